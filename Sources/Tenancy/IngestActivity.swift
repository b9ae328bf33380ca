import Synchronization

/// Finalizes in flight on this node. The post-ingest job worker yields to them, for a bounded time
/// before each job: a CI pipeline is waiting for its finalize answer, while a roll-up may lag a moment.
public final class IngestActivity: Sendable {
    private let inFlight = Atomic<Int>(0)

    public init() {}

    public var current: Int { inFlight.load(ordering: .relaxed) }

    /// Counts `body` as a finalize in flight.
    public func during<T>(_ body: () async throws -> T) async rethrows -> T {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        return try await body()
    }

    /// Returns once no finalize is in flight, or after `limit` at the latest.
    public func quiet(upTo limit: Duration, poll: Duration = .milliseconds(10)) async {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        while current > 0, clock.now < deadline {
            do { try await Task.sleep(for: poll) } catch { return }
        }
    }
}
