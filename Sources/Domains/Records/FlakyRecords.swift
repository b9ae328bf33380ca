import Foundation

/// A project's flaky policy and who set it; `updatedBy` is nil while the default applies.
public struct FlakyPolicyRecord: Sendable, Hashable {
    public let policy: FlakyPolicy
    public let updatedBy: String?
    public let updatedAt: Date?

    public init(policy: FlakyPolicy, updatedBy: String?, updatedAt: Date?) {
        self.policy = policy
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
    }
}

/// A flaky case as `GET /v1/projects/:slug/flaky` lists it: its flakiest branch's window.
public struct FlakyCaseRecord: Sendable, Hashable {
    public let caseID: String
    public let name: String
    public let suite: String?
    public let lastStatus: CaseStatus
    public let score: Double
    public let branch: String
    public let flakySince: Date?
    public let results: Int
    public let flips: Int
    public let retryPasses: Int
    public let lastFlipAt: Date?
    public let evidenceRunIDs: [String]

    public init(
        caseID: String, name: String, suite: String?, lastStatus: CaseStatus, score: Double, branch: String,
        flakySince: Date?, results: Int, flips: Int, retryPasses: Int, lastFlipAt: Date?, evidenceRunIDs: [String]
    ) {
        self.caseID = caseID
        self.name = name
        self.suite = suite
        self.lastStatus = lastStatus
        self.score = score
        self.branch = branch
        self.flakySince = flakySince
        self.results = results
        self.flips = flips
        self.retryPasses = retryPasses
        self.lastFlipAt = lastFlipAt
        self.evidenceRunIDs = evidenceRunIDs
    }
}
