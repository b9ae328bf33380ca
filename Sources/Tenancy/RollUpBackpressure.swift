/// How far a project's roll-ups may fall behind its finalizes before a finalize waits for them.
///
/// Under a push the machine cannot also roll up, the roll-up queue is where the backlog hides: every
/// finalize answers fast while the flaky verdicts, clusters and stats it feeds grow minutes stale. With a
/// limit, a whole-run finalize of a project whose roll-ups are behind waits (before the project's lane,
/// holding nothing of it) until they caught up, or until `maxWaitSeconds` passed — then it goes on: a stuck
/// roll-up slows pushes down, it never refuses them. Two limits, either or both:
/// - `maxPending`: the project already has that many finalized runs waiting for their roll-up;
/// - `maxLagSeconds`: the project's oldest run waiting for its roll-up was finalized longer ago than that
///   (the database's clock). This bounds staleness itself, and costs nothing while roll-ups keep within it.
/// The server's default is `standard`; both limits 0 turn it off (pushes go as fast as the server can finalize
/// them, and roll-ups fall behind as far as they must).
public struct RollUpBackpressure: Sendable, Equatable {
    /// Finalized runs of one project allowed to wait for their roll-up; 0 turns this limit off.
    public var maxPending: Int
    /// How long ago the oldest run still waiting for its roll-up may have been finalized; 0 turns this limit off.
    public var maxLagSeconds: Double
    /// The longest one finalize waits.
    public var maxWaitSeconds: Double

    public init(maxPending: Int = 0, maxLagSeconds: Double = 0, maxWaitSeconds: Double = 30) {
        self.maxPending = max(0, maxPending)
        self.maxLagSeconds = maxLagSeconds.isFinite ? min(max(0, maxLagSeconds), 3_600) : 0
        self.maxWaitSeconds = min(max(0, maxWaitSeconds), 3_600)
    }

    public static let off = RollUpBackpressure()

    /// The server's default: a project's roll-ups at most about a second behind, a finalize waiting at most 10 s.
    /// Measured under `ops/load.sh sustained --minutes 5` (2 cores, three invocations): lag p99 4.09–4.33 s against
    /// 9.83–10.43 s without it, for 14,788–16,517 cases/s against 19,582–20,299 (BENCHMARKS.md).
    public static let standard = RollUpBackpressure(maxLagSeconds: 1, maxWaitSeconds: 10)

    public var isOff: Bool { maxPending == 0 && maxLagSeconds == 0 }

    /// Whether a finalize facing `backlog` waits.
    public func holdsBack(_ backlog: RollUpBacklog) -> Bool {
        (maxPending > 0 && backlog.pending >= maxPending)
            || (maxLagSeconds > 0 && backlog.pending > 0 && backlog.oldestAgeSeconds > maxLagSeconds)
    }
}

/// A project's finalized runs still waiting for their roll-up.
public struct RollUpBacklog: Sendable, Equatable {
    public var pending: Int
    /// Seconds since the oldest of them was finalized; 0 when there is none.
    public var oldestAgeSeconds: Double

    public init(pending: Int, oldestAgeSeconds: Double) {
        self.pending = pending
        self.oldestAgeSeconds = oldestAgeSeconds
    }
}
