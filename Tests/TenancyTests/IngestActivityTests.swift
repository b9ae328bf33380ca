import Tenancy
import Synchronization
import Testing

/// The job worker yields to finalizes in flight, but never for longer than its limit.
@Suite struct IngestActivityTests {
    @Test func quietWaitsForFinalizesInFlightUpToItsLimit() async throws {
        let activity = IngestActivity()
        await activity.quiet(upTo: .seconds(30))  // nothing in flight: returns at once
        #expect(activity.current == 0)

        let release = AsyncStream<Void>.makeStream()
        let finalize = Task {
            await activity.during {
                for await _ in release.stream { break }
            }
        }
        while activity.current == 0 { await Task.yield() }
        let returned = Atomic<Bool>(false)
        let waiter = Task {
            await activity.quiet(upTo: .seconds(30))
            returned.store(true, ordering: .relaxed)
        }
        // A bounded wait gives up while the finalize is still in flight.
        await activity.quiet(upTo: .milliseconds(50))
        #expect(activity.current == 1)
        let returnedEarly = returned.load(ordering: .relaxed)
        #expect(!returnedEarly)

        release.continuation.yield()
        await finalize.value
        await waiter.value
        let returnedAfter = returned.load(ordering: .relaxed)
        #expect(returnedAfter)
        #expect(activity.current == 0)
    }
}
