import AsyncHTTPClient
import Domains
import Foundation
import KaizenServer
import Logging
import NIOCore
import Storage
import Synchronization
import Tenancy

/// A real Kaizen server on a free loopback port, on fresh databases on both test PostgreSQL servers.
public final class TestServer: Sendable {
    public let baseURL: String
    public let port: Int
    public let adminToken: String
    public let cluster: StorageCluster
    public let registry: WorkspaceRegistry
    public let config: KaizenConfiguration
    let shutdown: ShutdownHandle
    let task: Task<Void, any Error>

    init(
        baseURL: String, port: Int, adminToken: String, cluster: StorageCluster, registry: WorkspaceRegistry,
        config: KaizenConfiguration, shutdown: ShutdownHandle, task: Task<Void, any Error>
    ) {
        self.shutdown = shutdown
        self.baseURL = baseURL
        self.port = port
        self.adminToken = adminToken
        self.cluster = cluster
        self.registry = registry
        self.config = config
        self.task = task
    }

    /// Starts a server; `configure` may adjust the configuration (limits, TLS, …) first.
    public static func start(
        servers: Int = TestPostgres.serverCount, configure: (inout KaizenConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        let urls = try await TestPostgres.shared.freshDatabases(count: servers)
        var config = KaizenConfiguration()
        config.port = 0
        config.host = "127.0.0.1"
        config.databaseURLs = urls
        config.logicalShards = 8
        config.maxConnectionsPerServer = 8
        config.dataDirectory = NSTemporaryDirectory() + "kaizen-test-data-\(UUID().uuidString)"
        config.shutdownGraceSeconds = 8
        // Dozens of servers share two cores during the suite: a connection may take seconds to come.
        // (Tests of a down server set it back to fail fast.)
        config.dbAcquireTimeoutSeconds = 30
        // bcrypt's lowest cost: sign-ins in tests should not take a quarter second of CPU each. The default
        // (12) is what `PasswordHasherTests` checks.
        config.bcryptCost = 4
        // Tests push runs back to back on a loaded machine and some hold roll-ups up on purpose: a finalize should
        // not wait for them unless the test asks for it (RollUpBackpressureTests; one test runs the default).
        config.rollUpBackpressure = .off
        configure(&config)
        return try await start(config: config)
    }

    /// A new server process-equivalent on the same databases and data directory (a restart).
    public func restart() async throws -> TestServer {
        await shutdown.shutdown()
        await Self.waitOrAbandon(task, seconds: 20)
        return try await Self.start(config: config)
    }

    /// Waits for the server task to end, but never forever: a shutdown stuck behind an unreachable
    /// database must not hang the test run. After `seconds` the task is cancelled and left behind.
    /// True when the task ended by itself.
    @discardableResult
    static func waitOrAbandon(_ task: Task<Void, any Error>, seconds: Double) async -> Bool {
        let once = OnceFlag()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Task {
                _ = try? await task.value
                if once.claim() { continuation.resume(returning: true) }
            }
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                if once.claim() {
                    task.cancel()
                    continuation.resume(returning: false)
                }
            }
        }
    }

    public static func start(config: KaizenConfiguration) async throws -> TestServer {
        var logger = Logger(label: "kaizen.test-server")
        logger.logLevel = .warning
        let ready = ReadyBox()
        let frozen = config
        let task = Task {
            try await KaizenServerRunner.run(config: frozen, logger: logger, gracefulShutdownSignals: []) { info in
                await ready.set(info)
            }
        }
        let info: ServerReady
        do {
            info = try await ready.wait(orFailureOf: task)
        } catch {
            task.cancel()
            throw error
        }
        let token = try String(contentsOfFile: config.firstTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return TestServer(
            baseURL: "http://127.0.0.1:\(info.port)", port: info.port, adminToken: token, cluster: info.cluster,
            registry: info.registry, config: config, shutdown: info.shutdown, task: task)
    }

    /// Stops the server by cancelling its task (as a parent task's cancellation would). False when
    /// it did not end within `seconds`.
    @discardableResult
    public func cancel(within seconds: Double = 20) async -> Bool {
        task.cancel()
        let finished = await Self.waitOrAbandon(task, seconds: seconds)
        try? FileManager.default.removeItem(atPath: config.dataDirectory)
        return finished
    }

    /// Graceful shutdown; waits for the server to finish (at most `seconds`). False when it had to be abandoned.
    @discardableResult
    public func stop(within seconds: Double = 20) async -> Bool {
        await shutdown.shutdown()
        let finished = await Self.waitOrAbandon(task, seconds: seconds)
        try? FileManager.default.removeItem(atPath: config.dataDirectory)
        return finished
    }
}

actor ReadyBox {
    var info: ServerReady?
    var waiter: CheckedContinuation<ServerReady, any Error>?

    func set(_ info: ServerReady) {
        self.info = info
        waiter?.resume(returning: info)
        waiter = nil
    }

    func fail(_ error: any Error) {
        waiter?.resume(throwing: error)
        waiter = nil
    }

    func wait(orFailureOf task: Task<Void, any Error>) async throws -> ServerReady {
        // If the server task ends before it is ready, surface its error instead of hanging.
        Task {
            do {
                try await task.value
                self.fail(CancellationError())
            } catch {
                self.fail(error)
            }
        }
        if let info { return info }
        return try await withCheckedThrowingContinuation { continuation in
            if let info { continuation.resume(returning: info) } else { waiter = continuation }
        }
    }
}

/// True for the first caller of `claim` only.
final class OnceFlag: Sendable {
    private let claimed = Mutex(false)

    func claim() -> Bool {
        claimed.withLock { value in
            if value { return false }
            value = true
            return true
        }
    }
}
