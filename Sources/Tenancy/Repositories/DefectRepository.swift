import Domains

/// A workspace's defects and their links to cases and failure clusters.
public protocol DefectRepository: Sendable {
    /// Which of `ids` are cases of the project.
    func existingCases(projectID: String, ids: [String]) async throws -> Set<String>
    /// Which of `fingerprints` are failure clusters the project has seen.
    func existingFailureGroups(projectID: String, fingerprints: [String]) async throws -> Set<String>
    /// Which of `ids` are defects of the project.
    func existingDefects(projectID: String, ids: [String]) async throws -> Set<String>
    func createDefect(projectID: String, change: DefectChange, by actor: AuditActor) async throws -> DefectRecord
    /// Nil when the defect does not exist in this workspace.
    func updateDefect(id: String, change: DefectChange, by actor: AuditActor) async throws -> DefectRecord?
    func defect(id: String) async throws -> DefectRecord?
    func defects(projectID: String, status: DefectStatus?, before: String?, limit: Int) async throws -> [DefectRecord]
    func defectCounts(projectID: String) async throws -> [DefectStatus: Int]
    func defectsLinked(projectID: String, fingerprints: [String], caseIDs: [String]) async throws
        -> (byGroup: [String: [DefectRef]], byCase: [String: [DefectRef]])
}
