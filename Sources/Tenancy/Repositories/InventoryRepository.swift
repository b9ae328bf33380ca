import Domains

/// A workspace's case inventory: every case ever seen, with its roll-up and annotations.
public protocol InventoryRepository: Sendable {
    func cases(projectID: String, filter: CaseFilter, sort: CaseSort, after: PagePosition?, limit: Int) async throws
        -> [CaseSummaryRecord]
    /// Nil when unknown, or not rolled up yet.
    func caseSummary(id: String) async throws -> CaseSummaryRecord?
    /// The latest commit on which the case both passed and failed, as the roll-ups found it.
    func sameCommitEvidence(caseID: String) async throws -> SameCommitEvidence?
    /// The case's latest results on every branch, newest first.
    func recentResults(caseID: String, limit: Int) async throws -> [CaseHistoryEntry]
    /// `owner` `.some(nil)` clears it; nil fields are left as they are. False when the case is unknown.
    func annotateCase(id: String, owner: String??, labels: [String]?, defectIDs: [String]?, by actor: AuditActor)
        async throws -> Bool
    /// The project of a case of this workspace.
    func caseProject(id: String) async throws -> String?
    func caseWindows(caseID: String, nowMilliseconds: UInt64) async throws -> [CaseWindowRecord]
}
