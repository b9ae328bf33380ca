import Tenancy
import Testing

/// Finalizes in flight and ingest work done: what the memory trimmer decides by.
@Suite struct IngestActivityTests {
    @Test func countsFinalizesInFlightAndWorkDone() async throws {
        let activity = IngestActivity()
        #expect(activity.current == 0 && activity.completed == 0)

        let release = AsyncStream<Void>.makeStream()
        let finalize = Task {
            await activity.during {
                for await _ in release.stream { break }
            }
        }
        while activity.current == 0 { await Task.yield() }
        #expect(activity.current == 1 && activity.completed == 0)

        release.continuation.yield()
        await finalize.value
        #expect(activity.current == 0 && activity.completed == 1)

        // A failed finalize is work done too (it may have allocated as much).
        await #expect(throws: CancellationError.self) {
            try await activity.during { throw CancellationError() }
        }
        activity.recordWork()
        #expect(activity.current == 0 && activity.completed == 3)
    }
}
