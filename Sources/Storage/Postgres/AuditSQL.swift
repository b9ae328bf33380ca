import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// The audit log's rows. The catalog holds the rows of catalog changes (tokens, members, invitations),
/// each shard server those of its workspaces' changes (projects, policies, defects, case annotations):
/// a row is always written on the connection, and so in the transaction, of the change it records.
enum AuditSQL {
    /// The catalog's table, and the shards' (the first server holds both).
    enum Table: String {
        case catalog = "audit_events"
        case workspace = "workspace_audit_events"
    }

    static func insert(_ event: NewAuditEvent, into table: Table, on connection: PostgresConnection, logger: Logger) async throws {
        let id = ResourceID.make(.audit)
        let details = String(decoding: try JSONEncoder().encode(event.details), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO \(unescaped: table.rawValue) (workspace_id, id, actor_type, actor_id, client_address, request_id, action, target_type, target_id, details)
            VALUES (\(event.workspaceID), \(id), \(event.actor.type), \(event.actor.id), \(event.actor.clientAddress),
                    \(event.actor.requestID), \(event.action), \(event.targetType), \(event.targetID), \(details)::jsonb)
            """, logger: logger)
    }

    /// Newest first (ids are time-ordered), after the filter.
    static func events(
        workspaceID: String, filter: AuditFilter, limit: Int, from table: Table, on connection: PostgresConnection, logger: Logger
    ) async throws -> [AuditEvent] {
        var result: [AuditEvent] = []
        for try await row in try await connection.query(
            """
            SELECT id, at, actor_type, actor_id, client_address, request_id, action, target_type, target_id, details::text
            FROM \(unescaped: table.rawValue)
            WHERE workspace_id = \(workspaceID)
              AND (\(filter.actorID)::text IS NULL OR actor_id = \(filter.actorID))
              AND (\(filter.action)::text IS NULL OR action = \(filter.action))
              AND (\(filter.targetType)::text IS NULL OR target_type = \(filter.targetType))
              AND (\(filter.targetID)::text IS NULL OR target_id = \(filter.targetID))
              AND (\(filter.since)::timestamptz IS NULL OR at >= \(filter.since))
              AND (\(filter.until)::timestamptz IS NULL OR at < \(filter.until))
              AND (\(filter.beforeID)::text IS NULL OR id < \(filter.beforeID))
            ORDER BY id DESC LIMIT \(limit)
            """, logger: logger
        ).decode((String, Date, String, String, String?, String?, String, String, String, String).self) {
            let details = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(row.9.utf8))) ?? [:]
            result.append(
                AuditEvent(
                    id: row.0, workspaceID: workspaceID, at: row.1, actorType: row.2, actorID: row.3, clientAddress: row.4,
                    requestID: row.5, action: row.6, targetType: row.7, targetID: row.8, details: details))
        }
        return result
    }
}
