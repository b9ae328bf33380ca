import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's project events, in PostgreSQL.
public struct PostgresEventRepository: EventRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// A page of the project's events, newest first, optionally of one kind.
    public func events(projectID: String, kind: String?, before: String?, limit: Int) async throws -> [EventRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let kind = kind ?? ""
        let before = before ?? "~"
        return try await server.run { connection in
            var out: [EventRecord] = []
            for try await (id, kind, subject, payload, created) in try await connection.query(
                """
                SELECT id, kind, subject_id, payload::text, created_at FROM events
                WHERE workspace_id = \(ws) AND project_id = \(projectID) AND (\(kind) = '' OR kind = \(kind)) AND id < \(before)
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger
            ).decode((String, String, String, String, Date).self) {
                out.append(EventRecord(id: id, kind: kind, subjectID: subject, payload: payload, createdAt: created))
            }
            return out
        }
    }

    public func auditEvents(filter: AuditFilter, limit: Int) async throws -> [AuditEvent] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            try await AuditSQL.events(workspaceID: ws, filter: filter, limit: limit, from: .workspace, on: connection, logger: logger)
        }
    }

    public func stream(after position: Int64, projectIDs: [String]?, kinds: [String]?, limit: Int) async throws -> [StreamedEvent] {
        let (logger, ws) = (self.logger, workspaceID)
        let anyProject = projectIDs == nil
        let anyKind = kinds == nil
        let (projects, kinds) = (projectIDs ?? [], kinds ?? [])
        return try await server.run { connection in
            var out: [StreamedEvent] = []
            for try await (pos, id, kind, project, subject, payload, created) in try await connection.query(
                """
                SELECT pos, id, kind, project_id, subject_id, payload::text, created_at FROM events
                WHERE workspace_id = \(ws) AND pos IS NOT NULL AND pos > \(position)
                  AND (\(anyProject) OR project_id = ANY(\(projects)::text[])) AND (\(anyKind) OR kind = ANY(\(kinds)::text[]))
                ORDER BY pos LIMIT \(limit)
                """, logger: logger
            ).decode((Int64, String, String, String, String, String, Date).self) {
                out.append(
                    StreamedEvent(
                        position: pos, id: id, kind: kind, projectID: project, subjectID: subject, payload: payload, createdAt: created))
            }
            return out
        }
    }

    public func latestPosition() async throws -> Int64 {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var latest: Int64 = 0
            for try await pos in try await connection.query(
                "SELECT COALESCE(max(pos), 0)::bigint FROM events WHERE workspace_id = \(ws) AND pos IS NOT NULL", logger: logger
            ).decode(Int64.self) {
                latest = pos
            }
            return latest
        }
    }
}
