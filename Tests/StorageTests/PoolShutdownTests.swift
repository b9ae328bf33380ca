import Domains
import KaizenTestSupport
import NIOCore
import PostgresNIO
import Synchronization
import Testing

@testable import Storage

/// Closing the pools while a COPY is in flight: PostgresNIO traps when a connection is force-closed in the middle
/// of a COPY (a full test run died of it once: a roll-up still staging its rows when its server shut down). The
/// pools close only once no COPY runs, or stay open when one outlives the wait.
@Suite struct PoolShutdownTests {
    @Test func thePoolsCloseOnlyAfterACopyInFlightEnds() async throws {
        let urls = try await TestPostgres.shared.freshDatabases(count: 1)
        let servers = try StorageCluster.makeServers(
            urls: urls, maxConnectionsPerServer: 2, acquireTimeout: testAcquireTimeout, logger: testLogger)
        let pools = Task { await StorageCluster.runPools(servers) }
        let server = servers[0]
        try await server.run { _ = try await $0.query("CREATE TABLE copy_probe (v integer)", logger: testLogger) }
        #expect(server.copiesRunning == 0)

        let release = Gate()
        let copy = await Self.holdCopy(on: server, until: release)
        #expect(server.copiesRunning == 1)

        let heard = Gate()
        let waitedFor = Box()
        let closing = Task {
            await StorageCluster.closePools(servers, running: pools, within: .seconds(testConditionTimeout)) { count in
                waitedFor.set(count)
                Task { await heard.open() }
            }
        }
        // The close is now waiting for the COPY; only then does the COPY go on.
        await heard.wait()
        #expect(waitedFor.value == 1)
        await release.open()
        try await copy.value
        #expect(await closing.value == .closed)
        #expect(server.copiesRunning == 0)

        // Both rows arrived: the COPY was not cut off (read through a pool of its own).
        let count = try await withServers(urls: urls) { fresh in try await Self.probeRows(on: fresh[0]) }
        #expect(count == 2)
    }

    @Test func aCopyThatOutlivesTheWaitKeepsItsPoolOpen() async throws {
        let urls = try await TestPostgres.shared.freshDatabases(count: 1)
        let servers = try StorageCluster.makeServers(
            urls: urls, maxConnectionsPerServer: 2, acquireTimeout: testAcquireTimeout, logger: testLogger)
        let pools = Task { await StorageCluster.runPools(servers) }
        let server = servers[0]
        try await server.run { _ = try await $0.query("CREATE TABLE copy_probe (v integer)", logger: testLogger) }

        let release = Gate()
        let copy = await Self.holdCopy(on: server, until: release)
        // The COPY is held until after the close gave up, whatever the wait's length.
        let closing = await StorageCluster.closePools(servers, running: pools, within: .milliseconds(50))
        #expect(closing == .leftOpen(copies: 1))
        #expect(!pools.isCancelled)

        // The pool is still there: the COPY finishes and its rows are readable through it.
        await release.open()
        try await copy.value
        let count = try await Self.probeRows(on: server)
        #expect(count == 2)
        #expect(await StorageCluster.closePools(servers, running: pools, within: .seconds(testConditionTimeout)) == .closed)
    }

    /// A COPY into `copy_probe` that has sent one row and waits for `release` before sending the second; returns
    /// once it is in the middle of copying.
    static func holdCopy(on server: PhysicalServer, until release: Gate) async -> Task<Void, any Error> {
        let midCopy = Gate()
        let copy = Task {
            try await server.run { connection in
                try await connection.countedCopyFrom(table: "copy_probe", columns: ["v"], logger: testLogger) { writer in
                    try await writer.write(ByteBuffer(string: "1\n"))
                    await midCopy.open()
                    await release.wait()
                    try await writer.write(ByteBuffer(string: "2\n"))
                }
            }
        }
        await midCopy.wait()
        return copy
    }

    static func probeRows(on server: PhysicalServer) async throws -> Int {
        try await server.run { connection -> Int in
            for try await n in try await connection.query("SELECT count(*)::int FROM copy_probe", logger: testLogger)
                .decode(Int.self)
            { return n }
            return -1
        }
    }
}


/// One value set from a synchronous callback.
final class Box: Sendable {
    private let stored = Mutex<Int?>(nil)
    func set(_ value: Int) { stored.withLock { $0 = value } }
    var value: Int? { stored.withLock { $0 } }
}
