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
public struct WindowFold: Sendable {
    public let policy: FlakyPolicy
    /// Every window the runs touched, as it stands after them.
    public private(set) var histories: [String: FlakyHistory]
    /// Windows that existed before the fold (the rest are new).
    public let existing: Set<String>
    /// Cases in the order the runs first touched them.
    public private(set) var touched: [String] = []
    /// The verdict of each touched window after the fold.
    public private(set) var verdicts: [String: FlakyVerdict] = [:]
    /// When each window last saw a flip or a pass on retry, if during the fold.
    public private(set) var lastFlipAt: [String: Date] = [:]
    /// Per folded run, in order: the windows whose verdict it moved.
    public private(set) var moves: [(run: RolledRun, moved: [WindowMove])] = []

    public init(policy: FlakyPolicy, stored: [String: FlakyHistory]) {
        self.policy = policy
        self.histories = stored
        self.existing = Set(stored.keys)
    }

    /// Appends one run's outcomes (a case reported twice appends twice) and notes whose verdict moved.
    /// A new window at the lowest verdict (not flaky, score 0) is not a move: it cannot raise the case's.
    public mutating func fold(_ run: RolledRun) {
        var before: [String: FlakyVerdict] = [:]
        var order: [String] = []
        var seenInRun: Set<String> = []
        for result in run.results {
            guard let outcome = FlakyOutcome(status: result.status, retried: result.retried) else { continue }
            let caseID = result.caseID
            if seenInRun.insert(caseID).inserted {
                if let history = histories[caseID] { before[caseID] = verdicts[caseID] ?? history.verdict(policy) }
                // First touched by this fold: it has no verdict of the fold yet.
                if verdicts[caseID] == nil { touched.append(caseID) }
                order.append(caseID)
            }
            histories[caseID, default: FlakyHistory()].append(outcome, runID: run.id)
        }
        var moved: [WindowMove] = []
        for caseID in order {
            guard let history = histories[caseID] else { continue }
            let after = history.verdict(policy)
            verdicts[caseID] = after
            if history.lastEventWasEvidence { lastFlipAt[caseID] = run.createdAt }
            let isMove: Bool
            if let old = before[caseID] {
                isMove = old.isFlaky != after.isFlaky || old.score != after.score
            } else {
                isMove = after.isFlaky || after.score > 0
            }
            if isMove { moved.append(WindowMove(caseID: caseID, verdict: after, evidence: history.evidence)) }
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
        for run in runs {
            for result in run.results {
                if deltas[result.caseID] == nil {
                    order.append(result.caseID)
                    deltas[result.caseID] = CaseStatsDelta(
                        firstSeenAt: run.createdAt, lastSeenAt: run.createdAt, lastRunID: run.id, lastStatus: result.status,
                        lastSeq: run.seq)
                }
                deltas[result.caseID]!.add(result, of: run)
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
