import Logging
import PostgresNIO

extension PostgresConnection {
    /// Whether `table` holds any row of the project: one probe of an index led by (workspace_id, project_id),
    /// asked before work that a project without such rows (its first push, no defect links) can skip.
    /// `table` is one of ours, never input.
    func projectHasRows(in table: StaticString, projectID: String, workspaceID ws: String, logger: Logger) async throws -> Bool {
        var found = false
        for try await exists in try await query(
            "SELECT EXISTS (SELECT 1 FROM \(unescaped: "\(table)") WHERE workspace_id = \(ws) AND project_id = \(projectID))",
            logger: logger
        ).decode(Bool.self) {
            found = exists
        }
        return found
    }
}
