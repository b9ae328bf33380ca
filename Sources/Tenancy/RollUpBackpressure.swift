/// How far a project's roll-ups may fall behind its finalizes before a finalize waits for them.
///
/// Under a push the machine cannot also roll up, the roll-up queue is where the backlog hides: every
/// finalize answers fast while the flaky verdicts, clusters and stats it feeds grow minutes stale. With a
/// limit, a whole-run finalize of a project that already has `maxPending` finalized runs waiting for their
/// roll-up waits (before the project's lane, holding nothing of it) until one is rolled up, or until
/// `maxWaitSeconds` passed — then it goes on: a stuck roll-up slows pushes down, it never refuses them.
/// Off (0) by default: pushes go as fast as the server can finalize them.
public struct RollUpBackpressure: Sendable, Equatable {
    /// Finalized runs of one project allowed to wait for their roll-up; 0 turns the wait off.
    public var maxPending: Int
    /// The longest one finalize waits.
    public var maxWaitSeconds: Double

    public init(maxPending: Int, maxWaitSeconds: Double = 30) {
        self.maxPending = max(0, maxPending)
        self.maxWaitSeconds = min(max(0, maxWaitSeconds), 3_600)
    }

    public static let off = RollUpBackpressure(maxPending: 0)
}
