import Domains

/// What the roll-ups derive: failure clusters, flakiness, and the roll-up itself.
public protocol IntelligenceRepository: Sendable {
    func runFailureGroups(runID: String) async throws -> [RunFailureGroupRecord]
    /// Most recently seen first; pages by (lastSeenAt, fingerprint).
    func projectFailureGroups(projectID: String, before: (micros: Int64, fingerprint: String)?, limit: Int)
        async throws -> [FailureGroupRecord]
    func flakyPolicy(projectID: String) async throws -> FlakyPolicyRecord
    func setFlakyPolicy(projectID: String, policy: FlakyPolicy, by actor: AuditActor) async throws -> FlakyPolicyRecord
    func flakyCases(projectID: String, after: (score: Double, caseID: String)?, limit: Int) async throws
        -> [FlakyCaseRecord]
    /// Rolls a run up into the inventory, daily counts, clusters, flakiness and defects, exactly once. With
    /// `inOrder`, waits (`.waiting`) while an earlier run of the project is not rolled up yet.
    /// Folds finalized runs (several of one project fold as one batch, in finalize order).
    func rollUp(runIDs: [String], inOrder: Bool) async throws -> RollUpOutcome
}

extension IntelligenceRepository {
    public func rollUp(runID: String, inOrder: Bool) async throws -> RollUpOutcome {
        try await rollUp(runIDs: [runID], inOrder: inOrder)
    }
}
