import Synchronization

/// Finalizes in flight on this node, and how much ingest work (finalizes, roll-ups) finished so far:
/// the memory trimmer gives freed memory back to the system once work happened and none is in flight.
public final class IngestActivity: Sendable {
    private let inFlight = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    public init() {}

    /// Finalizes in flight.
    public var current: Int { inFlight.load(ordering: .relaxed) }

    /// Finalizes and other ingest work finished since the process started.
    public var completed: Int { finished.load(ordering: .relaxed) }

    /// Counts `body` as a finalize in flight.
    public func during<T>(_ body: () async throws -> T) async rethrows -> T {
        inFlight.add(1, ordering: .relaxed)
        defer {
            inFlight.subtract(1, ordering: .relaxed)
            finished.add(1, ordering: .relaxed)
        }
        return try await body()
    }

    /// Counts a piece of work done outside a finalize (a roll-up, an eviction of idle workspaces).
    public func recordWork() {
        finished.add(1, ordering: .relaxed)
    }
}
