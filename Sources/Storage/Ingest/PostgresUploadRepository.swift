import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// Upload sessions and the attachment blobs a workspace has stored, in PostgreSQL.
public struct PostgresUploadRepository: UploadRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    // MARK: blobs and upload sessions

    /// The subset of `shas` this workspace already stores.
    public func existingBlobs(_ shas: [String]) async throws -> Set<String> {
        guard !shas.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await sha in try await connection.query(
                "SELECT sha256 FROM blobs WHERE workspace_id = \(ws) AND sha256 = ANY(\(shas))", logger: logger
            ).decode(String.self) {
                found.insert(sha)
            }
            return found
        }
    }

    public func recordBlob(sha256: String, size: Int64, contentType: String) async throws {
        let (logger, ws) = (self.logger, workspaceID)
        try await server.run { connection in
            try await connection.query(
                """
                INSERT INTO blobs (workspace_id, sha256, size, content_type) VALUES (\(ws), \(sha256), \(size), \(contentType))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    public func createUploadSession(_ session: UploadSession) async throws {
        let (logger, ws) = (self.logger, workspaceID)
        let attachments = String(decoding: try JSONEncoder().encode(session.attachments), as: UTF8.self)
        try await server.run { connection in
            try await connection.query(
                """
                INSERT INTO upload_sessions (workspace_id, id, project_id, external_run_id, attachments, expires_at)
                VALUES (\(ws), \(session.id), \(session.projectID), \(session.externalRunId), \(attachments)::jsonb, \(session.expiresAt))
                """, logger: logger)
        }
    }

    public func uploadSession(id: String) async throws -> UploadSession? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT project_id, external_run_id, attachments::text, expires_at FROM upload_sessions
                WHERE workspace_id = \(ws) AND id = \(id)
                """, logger: logger)
            for try await (project, external, attachments, expires) in rows.decode((String, String, String, Date).self) {
                let declared = try JSONDecoder().decode([DeclaredAttachment].self, from: Data(attachments.utf8))
                return UploadSession(
                    id: id, workspaceID: ws, projectID: project, externalRunId: external, attachments: declared,
                    expiresAt: expires)
            }
            return nil
        }
    }
}
