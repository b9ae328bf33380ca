import Foundation
import Synchronization
import Testing

@testable import Gateway
import Tenancy

/// The stream body's own logic, in memory: a backlog is read a page at a time as the client pulls (never all at
/// once), positions carry on from page to page, keep-alives come only when nothing is pending, and a closed hub
/// ends the body.
@Suite struct StreamPumpTests {
    /// A fake log of `count` events; records each read's starting position.
    final class Log: Sendable {
        let count: Int64
        let reads = Mutex<[Int64]>([])
        init(count: Int64) { self.count = count }

        func read(after: Int64) -> (chunks: [String], last: Int64, more: Bool) {
            reads.withLock { $0.append(after) }
            let end = min(count, after + Int64(StreamPump.pageSize))
            let chunks = (after..<end).map { ServerSentEvents.event(id: String($0 + 1), event: "run.finalized", data: "{}") }
            return (chunks, end, end < count)
        }
    }

    @Test func aBacklogIsReadAPageAtATimeAsTheClientPulls() async throws {
        let hub = LiveEventHub()
        let log = Log(count: Int64(StreamPump.pageSize) * 2 + 5)
        let subscription = hub.subscribe(workspaceID: "ws_a")
        let pump = StreamPump(
            signals: subscription.signals, position: 0, read: { log.read(after: $0) }, progress: { _ in nil }, stillValid: { true })
        #expect(String(decoding: try #require(try await pump.next()), as: UTF8.self).hasPrefix("retry: 2000"))
        // The first pulls need one page only.
        for expected in 1...StreamPump.pageSize {
            let chunk = String(decoding: try #require(try await pump.next()), as: UTF8.self)
            #expect(chunk.hasPrefix("id: \(expected)\n"))
        }
        #expect(log.reads.withLock { $0 } == [0])
        // The rest, in order, page by page.
        var ids: [Int] = []
        for _ in 0..<(StreamPump.pageSize + 5) {
            let chunk = String(decoding: try #require(try await pump.next()), as: UTF8.self)
            ids.append(Int(chunk.split(separator: "\n")[0].dropFirst(4))!)
        }
        #expect(ids == Array((StreamPump.pageSize + 1)...(StreamPump.pageSize * 2 + 5)))
        #expect(log.reads.withLock { $0 } == [0, Int64(StreamPump.pageSize), Int64(StreamPump.pageSize) * 2])
        // Caught up: a keep-alive when told, then the end when the hub closes.
        hub.heartbeat()
        #expect(String(decoding: try #require(try await pump.next()), as: UTF8.self) == ": keep-alive\n\n")
        hub.close()
        #expect(try await pump.next() == nil)
    }

    @Test func eventsWithManyLinesStayOneEvent() {
        #expect(ServerSentEvents.event(id: "7", event: "x", data: "a\nb") == "id: 7\nevent: x\ndata: a\ndata: b\n\n")
        #expect(ServerSentEvents.event(id: nil, event: "ingest.progress", data: "{}") == "event: ingest.progress\ndata: {}\n\n")
    }
}
