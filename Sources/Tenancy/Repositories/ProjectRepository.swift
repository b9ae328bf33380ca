import Domains

/// A workspace's projects and its write sequence, in storage.
public protocol ProjectRepository: Sendable {
    /// The last write sequence number persisted for the workspace (0 when none).
    func writeSequence() async throws -> Int64
    func projects() async throws -> [Project]
    /// Inserts a project and records `seq` as the workspace's write sequence, in one transaction.
    /// Throws a unique violation when the slug is taken (perhaps by another node).
    /// With `actor`, the audit row is written in the same transaction.
    func insertProject(slug: String, name: String, accessMode: AccessMode, defaultBranch: String, seq: Int64, by actor: AuditActor?)
        async throws -> Project
    /// Stats of every project of the workspace, by project id.
    func projectStats() async throws -> [String: ProjectStatsRecord]
    func projectHistory(projectID: String, topSuites: Int) async throws -> ProjectHistoryRecord
}
