import Foundation

/// A project with what its page shows besides the project itself.
public struct ProjectOverview: Sendable {
    public let stats: ProjectStatsRecord?
    public let history: ProjectHistoryRecord
    public let defectCounts: [DefectStatus: Int]

    public init(stats: ProjectStatsRecord?, history: ProjectHistoryRecord, defectCounts: [DefectStatus: Int]) {
        self.stats = stats
        self.history = history
        self.defectCounts = defectCounts
    }
}

/// A run with the run it was compared with.
public struct RunWithBaseline: Sendable {
    public let run: RunRecord
    public let baseline: RunRecord?

    public init(run: RunRecord, baseline: RunRecord?) {
        self.run = run
        self.baseline = baseline
    }
}

/// One case's result in a run, with its steps, attachments and recent history on the run's branch.
public struct CaseResultDetail: Sendable {
    public let result: CaseResultRecord
    public let steps: [FlatStep]
    public let attachments: [DeclaredAttachment]
    public let history: [CaseHistoryEntry]

    public init(
        result: CaseResultRecord, steps: [FlatStep], attachments: [DeclaredAttachment], history: [CaseHistoryEntry]
    ) {
        self.result = result
        self.steps = steps
        self.attachments = attachments
        self.history = history
    }
}

/// A case of the inventory with its windows, linked defects and latest results.
public struct CaseDetail: Sendable {
    public let summary: CaseSummaryRecord
    public let recent: [CaseHistoryEntry]
    public let windows: [CaseWindowRecord]
    public let defects: [DefectRef]
    /// A commit on which the case both passed and failed, if any (the latest).
    public let sameCommit: SameCommitEvidence?
    /// The quarantine in force, if any.
    public let quarantine: QuarantineRecord?

    public init(
        summary: CaseSummaryRecord, recent: [CaseHistoryEntry], windows: [CaseWindowRecord], defects: [DefectRef],
        sameCommit: SameCommitEvidence? = nil, quarantine: QuarantineRecord? = nil
    ) {
        self.sameCommit = sameCommit
        self.quarantine = quarantine
        self.summary = summary
        self.recent = recent
        self.windows = windows
        self.defects = defects
    }
}

/// A failure cluster of one run and the defects it is attributed to.
public struct AttributedFailureGroup: Sendable {
    public let group: RunFailureGroupRecord
    public let defects: [DefectRef]

    public init(group: RunFailureGroupRecord, defects: [DefectRef]) {
        self.group = group
        self.defects = defects
    }
}

/// A page of flaky cases and the policy that scored them.
public struct FlakyCasesPage: Sendable {
    public let policy: FlakyPolicyRecord
    public let cases: [FlakyCaseRecord]

    public init(policy: FlakyPolicyRecord, cases: [FlakyCaseRecord]) {
        self.policy = policy
        self.cases = cases
    }
}

/// One workspace's share of the cross-workspace overview.
public struct WorkspaceTrends: Sendable {
    public let daily: [String: DailyCounts]
    public let totals: [ProjectWindowTotals]
    public let recentRuns: [RunRecord]

    public init(daily: [String: DailyCounts], totals: [ProjectWindowTotals], recentRuns: [RunRecord]) {
        self.daily = daily
        self.totals = totals
        self.recentRuns = recentRuns
    }
}

/// What became of a roll-up job.
public enum RollUpOutcome: Sendable, Equatable {
    case rolledUp
    /// Already done (a retried or duplicated job).
    case alreadyRolledUp
    /// An earlier run of the project is not rolled up yet: try again later, without spending an attempt.
    case waiting(forRunID: String)
}

/// A case that passed and failed on the same commit: flakiness evidence on its own, whatever the score.
public struct SameCommitEvidence: Sendable, Hashable {
    public let commit: String
    public let passedRunID: String
    public let failedRunID: String
    public let seenAt: Date

    public init(commit: String, passedRunID: String, failedRunID: String, seenAt: Date) {
        self.commit = commit
        self.passedRunID = passedRunID
        self.failedRunID = failedRunID
        self.seenAt = seenAt
    }
}
