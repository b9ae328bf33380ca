import Foundation

/// A case of a project's inventory with its rolled-up history (`case_stats`, kept by post-ingest jobs).
public struct CaseSummaryRecord: Sendable, Hashable {
    public let id: String
    public let projectID: String
    public let key: String
    public let name: String
    public let suite: String?
    public let file: String?
    public let lastStatus: CaseStatus
    public let lastRunID: String
    public let firstSeenAt: Date
    public let lastSeenAt: Date
    public let lastFailedAt: Date?
    public let runs: Int
    public let passed: Int
    public let failed: Int
    public let broken: Int
    public let skipped: Int
    public let flaky: Int
    public let totalDurationMs: Int64
    public let owner: String?
    public let labels: [String]
    public let annotatedBy: String?
    public let annotatedAt: Date?
    public let isFlaky: Bool
    public let flakyScore: Double

    public init(
        id: String, projectID: String, key: String, name: String, suite: String?, file: String?,
        lastStatus: CaseStatus, lastRunID: String, firstSeenAt: Date, lastSeenAt: Date, lastFailedAt: Date?,
        runs: Int, passed: Int, failed: Int, broken: Int, skipped: Int, flaky: Int, totalDurationMs: Int64,
        owner: String?, labels: [String], annotatedBy: String?, annotatedAt: Date?, isFlaky: Bool, flakyScore: Double
    ) {
        self.id = id
        self.projectID = projectID
        self.key = key
        self.name = name
        self.suite = suite
        self.file = file
        self.lastStatus = lastStatus
        self.lastRunID = lastRunID
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
        self.lastFailedAt = lastFailedAt
        self.runs = runs
        self.passed = passed
        self.failed = failed
        self.broken = broken
        self.skipped = skipped
        self.flaky = flaky
        self.totalDurationMs = totalDurationMs
        self.owner = owner
        self.labels = labels
        self.annotatedBy = annotatedBy
        self.annotatedAt = annotatedAt
        self.isFlaky = isFlaky
        self.flakyScore = flakyScore
    }
}

/// Orders of the inventory; each pages by keyset on (its key, id).
public enum CaseSort: String, Sendable, CaseIterable {
    case name
    /// Most failures (failed + broken) first.
    case failures = "-failures"
    /// Most recently failed first; never-failed cases last.
    case lastFailed = "-lastFailedAt"
}

public struct CaseFilter: Sendable {
    public var lastStatus: CaseStatus?
    public var suite: String?
    /// Case-insensitive substring of the name, suite or key.
    public var text: String?
    /// Only cases the flakiness scoring currently calls flaky.
    public var flakyOnly = false
    public var label: String?
    public var owner: String?

    public init(
        lastStatus: CaseStatus? = nil, suite: String? = nil, text: String? = nil, flakyOnly: Bool = false,
        label: String? = nil, owner: String? = nil
    ) {
        self.lastStatus = lastStatus
        self.suite = suite
        self.text = text
        self.flakyOnly = flakyOnly
        self.label = label
        self.owner = owner
    }
}

/// Where a page of any list ends: the sort key of its last row (text or number) and that row's id.
public struct PagePosition: Sendable, Hashable, Codable {
    public let text: String?
    public let number: Int64?
    public let id: String

    public init(text: String?, number: Int64?, id: String) {
        self.text = text
        self.number = number
        self.id = id
    }
}

public struct CaseWindowRecord: Sendable, Hashable {
    public let days: Int
    public let results: Int
    public let passRate: Double?
    public let medianDurationMs: Double?

    public init(days: Int, results: Int, passRate: Double?, medianDurationMs: Double?) {
        self.days = days
        self.results = results
        self.passRate = passRate
        self.medianDurationMs = medianDurationMs
    }
}
