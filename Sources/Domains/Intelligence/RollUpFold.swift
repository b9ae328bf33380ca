import Foundation

// Folding several runs of a project into the roll-ups at once, with exactly the result of folding them
// one by one: what each run changes is replayed in finalize order here, and storage then writes each
// case once per batch instead of once per run.

/// One result of a run, as the roll-up reads it.
public struct RolledResult: Sendable, Hashable {
    public let caseID: String
    public let status: CaseStatus
    public let retried: Bool
    public let durationMS: Int64

    public init(caseID: String, status: CaseStatus, retried: Bool, durationMS: Int64) {
        self.caseID = caseID
        self.status = status
        self.retried = retried
        self.durationMS = durationMS
    }
}

/// A run being folded, with its results in report order.
public struct RolledRun: Sendable {
    public let id: String
    public let branch: String
    public let createdAt: Date
    public let seq: Int64
    public let results: [RolledResult]

    public init(id: String, branch: String, createdAt: Date, seq: Int64, results: [RolledResult]) {
        self.id = id
        self.branch = branch
        self.createdAt = createdAt
        self.seq = seq
        self.results = results
    }
}

/// A window's verdict as a case's verdict is chosen among its branches.
public struct BranchVerdict: Sendable, Hashable {
    public let branch: String
    public let score: Double
    public let isFlaky: Bool

    public init(branch: String, score: Double, isFlaky: Bool) {
        self.branch = branch
        self.score = score
        self.isFlaky = isFlaky
    }

    /// The case takes its flakiest window: flaky first, then score, then branch name (the order the
    /// storage's `ORDER BY is_flaky DESC, score DESC, branch` uses).
    public func outranks(_ other: BranchVerdict) -> Bool {
        if isFlaky != other.isFlaky { return isFlaky }
        if score != other.score { return score > other.score }
        return branch < other.branch
    }
}

/// A case's window whose verdict one run moved: the verdict and the evidence right after that run.
public struct WindowMove: Sendable, Hashable {
    public let caseID: String
    public let verdict: FlakyVerdict
    public let evidence: [String]
}

/// Extends the windows of one branch with several runs in order.
///
/// Each case has a slot, found by one hash of its id per result; what the fold keeps of a case lives in
/// arrays by slot (a roll-up folds tens of thousands of cases, and five dictionaries keyed by id cost about
/// as much as the rest of the fold).
public struct WindowFold: Sendable {
    public let policy: FlakyPolicy
    /// Cases in the order the runs first touched them.
    public private(set) var touched: [String] = []
    /// Per folded run, in order: the windows whose verdict it moved.
    public private(set) var moves: [(run: RolledRun, moved: [WindowMove])] = []

    private var slotOf: [String: Int] = [:]
    private var ids: [String] = []
    /// The window as it stands (nil: none yet), as it was stored (nil: new), its verdict after the fold
    /// (nil: not touched), the time of its last flip or pass on retry during the fold, and the last run
    /// (by fold count) that touched it.
    private var windows: [FlakyHistory?] = []
    private var stored: [FlakyHistory?] = []
    private var after: [FlakyVerdict?] = []
    private var flipAt: [Date?] = []
    private var seenIn: [Int] = []
    private var folded = 0

    public init(policy: FlakyPolicy, stored: [String: FlakyHistory]) {
        self.policy = policy
        slotOf.reserveCapacity(stored.count)
        for (caseID, history) in stored { addSlot(caseID, stored: history) }
    }

    @discardableResult
    private mutating func addSlot(_ caseID: String, stored history: FlakyHistory?) -> Int {
        let slot = ids.count
        slotOf[caseID] = slot
        ids.append(caseID)
        windows.append(history)
        stored.append(history)
        after.append(nil)
        flipAt.append(nil)
        seenIn.append(0)
        return slot
    }

    /// Every window the runs touched, as it stands after them (and the stored ones they did not).
    public var histories: [String: FlakyHistory] {
        var out: [String: FlakyHistory] = [:]
        for (slot, window) in windows.enumerated() { if let window { out[ids[slot]] = window } }
        return out
    }

    /// The verdict of a touched window after the fold.
    public func verdict(of caseID: String) -> FlakyVerdict? { slotOf[caseID].flatMap { after[$0] } }

    /// Each touched window in `touched` order: as it stands, its verdict, its last flip during the fold, and
    /// the window as stored before (nil for a new one).
    public func forEachTouched(_ body: (_ caseID: String, _ window: FlakyHistory, _ verdict: FlakyVerdict, _ lastFlipAt: Date?,
                                        _ stored: FlakyHistory?) throws -> Void) rethrows {
        for caseID in touched {
            guard let slot = slotOf[caseID], let window = windows[slot], let verdict = after[slot] else { continue }
            try body(caseID, window, verdict, flipAt[slot], stored[slot])
        }
    }

    /// Appends one run's outcomes (a case reported twice appends twice) and notes whose verdict moved.
    /// A new window at the lowest verdict (not flaky, score 0) is not a move: it cannot raise the case's.
    public mutating func fold(_ run: RolledRun) {
        folded += 1
        var order: [Int] = []
        var before: [FlakyVerdict?] = []
        for result in run.results {
            guard let outcome = FlakyOutcome(status: result.status, retried: result.retried) else { continue }
            let slot = slotOf[result.caseID] ?? addSlot(result.caseID, stored: nil)
            if seenIn[slot] != folded {
                seenIn[slot] = folded
                before.append(windows[slot].map { after[slot] ?? $0.verdict(policy) })
                // First touched by this fold: it has no verdict of the fold yet.
                if after[slot] == nil { touched.append(ids[slot]) }
                order.append(slot)
            }
            if windows[slot] == nil { windows[slot] = FlakyHistory() }
            windows[slot]!.append(outcome, runID: run.id)
        }
        var moved: [WindowMove] = []
        for (index, slot) in order.enumerated() {
            guard let history = windows[slot] else { continue }
            let verdict = history.verdict(policy)
            after[slot] = verdict
            if history.lastEventWasEvidence { flipAt[slot] = run.createdAt }
            let isMove: Bool
            if let old = before[index] {
                isMove = old.isFlaky != verdict.isFlaky || old.score != verdict.score
            } else {
                isMove = verdict.isFlaky || verdict.score > 0
            }
            if isMove { moved.append(WindowMove(caseID: ids[slot], verdict: verdict, evidence: history.evidence)) }
        }
        moves.append((run, moved))
    }

    /// Every case whose window verdict moved during the fold.
    public var movedCases: [String] {
        var seen: Set<String> = []
        return moves.flatMap { $0.moved.map(\.caseID) }.filter { seen.insert($0).inserted }
    }
}

/// A case's verdict after a fold, and whether it became flaky during it.
public struct CaseVerdictChange: Sendable, Hashable {
    public let verdict: BranchVerdict
    /// It went from not flaky to flaky at least once: its `flaky_since` starts again.
    public let becameFlaky: Bool
}

/// Replays the window moves of folded runs onto the cases' verdicts, run by run, as folding them one
/// at a time would have: a moved window re-picks its case's flakiest window.
public struct CaseVerdictReplay: Sendable {
    /// Whether each case is flaky now, as the replay goes (seeded from storage on first sight).
    public private(set) var isFlaky: [String: Bool] = [:]
    /// The verdict each re-picked case ends with.
    public private(set) var changes: [String: CaseVerdictChange] = [:]
    /// Per run, the cases that became flaky with it and the window that made them.
    public private(set) var detected: [(run: RolledRun, cases: [WindowMove])] = []

    public init() {}

    /// Replays one branch's fold. `storedFlaky` is whether each moved case was flaky before the batch
    /// (cases seen by an earlier fold of this batch keep the replay's own state); `otherBranches` is each
    /// moved case's flakiest window on another branch, if it has one.
    public mutating func replay(_ fold: WindowFold, branch: String, storedFlaky: [String: Bool], otherBranches: [String: BranchVerdict]) {
        for (run, moved) in fold.moves {
            var became: [WindowMove] = []
            for move in moved {
                let own = BranchVerdict(branch: branch, score: move.verdict.score, isFlaky: move.verdict.isFlaky)
                let best = otherBranches[move.caseID].map { $0.outranks(own) ? $0 : own } ?? own
                let wasFlaky = isFlaky[move.caseID] ?? storedFlaky[move.caseID] ?? false
                let becomes = best.isFlaky && !wasFlaky
                if becomes { became.append(move) }
                isFlaky[move.caseID] = best.isFlaky
                changes[move.caseID] = CaseVerdictChange(
                    verdict: best, becameFlaky: becomes || (changes[move.caseID]?.becameFlaky ?? false))
            }
            detected.append((run, became))
        }
    }
}

/// What a batch of runs adds to each case's stats: counts and sums, first and latest sighting.
public struct CaseStatsDelta: Sendable, Hashable {
    public var firstSeenAt: Date
    public var lastSeenAt: Date
    /// Of the latest run (by time, then finalize order).
    public var lastRunID: String
    public var lastStatus: CaseStatus
    var lastSeq: Int64
    public var lastFailedAt: Date?
    public var runs = 0
    public var passed = 0
    public var failed = 0
    public var broken = 0
    public var skipped = 0
    public var flaky = 0
    public var durationMS: Int64 = 0

    /// Folds every result of `runs` (any order) into one delta per case, in first-sighting order.
    public static func fold(_ runs: [RolledRun]) -> (order: [String], deltas: [String: CaseStatsDelta]) {
        var order: [String] = []
        var deltas: [String: CaseStatsDelta] = [:]
        deltas.reserveCapacity(runs.first?.results.count ?? 0)
        order.reserveCapacity(runs.first?.results.count ?? 0)
        for run in runs {
            for result in run.results {
                // One hash of the case id per result: a roll-up folds tens of thousands.
                if let slot = deltas.index(forKey: result.caseID) {
                    deltas.values[slot].add(result, of: run)
                } else {
                    var delta = CaseStatsDelta(
                        firstSeenAt: run.createdAt, lastSeenAt: run.createdAt, lastRunID: run.id, lastStatus: result.status,
                        lastSeq: run.seq)
                    delta.add(result, of: run)
                    order.append(result.caseID)
                    deltas[result.caseID] = delta
                }
            }
        }
        return (order, deltas)
    }

    mutating func add(_ result: RolledResult, of run: RolledRun) {
        firstSeenAt = min(firstSeenAt, run.createdAt)
        if (run.createdAt, run.seq) >= (lastSeenAt, lastSeq) {
            (lastSeenAt, lastSeq, lastRunID, lastStatus) = (run.createdAt, run.seq, run.id, result.status)
        }
        runs += 1
        switch result.status {
        case .passed: passed += 1
        case .failed: failed += 1
        case .broken: broken += 1
        case .skipped: skipped += 1
        }
        if result.status.isFailing { lastFailedAt = max(lastFailedAt ?? run.createdAt, run.createdAt) }
        if result.retried { flaky += 1 }
        durationMS += result.durationMS
    }
}
