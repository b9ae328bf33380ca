import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's webhooks and their deliveries, in PostgreSQL. Changes are audited in their transaction.
public struct PostgresWebhookRepository: WebhookRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    static let columns = """
        SELECT id, project_id, url, events, format, description, active,
               CASE WHEN previous_until > now() THEN previous_until END AS previous_until, disabled_reason, created_by,
               created_at, updated_at
        FROM webhooks
        """

    static func decode(_ row: PostgresRow) throws -> WebhookRecord {
        let (id, project, url, events, format, description, active, previous, disabled, by, created, updated) = try row.decode(
            (String, String, String, [String], String, String, Bool, Date?, String?, String, Date, Date).self)
        return WebhookRecord(
            id: id, projectID: project,
            settings: WebhookSettings(
                url: url, events: events.compactMap(WebhookEventKind.init(rawValue:)), format: WebhookFormat(rawValue: format) ?? .kaizen,
                description: description, active: active),
            previousSecretValidUntil: previous, disabledReason: disabled, createdBy: by, createdAt: created, updatedAt: updated)
    }

    static func webhook(id: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger) async throws
        -> WebhookRecord?
    {
        var query = PostgresQuery(unsafeSQL: columns + " WHERE workspace_id = $1 AND id = $2")
        query.binds.append(ws)
        query.binds.append(id)
        for try await row in try await connection.query(query, logger: logger) { return try decode(row) }
        return nil
    }

    func audit(
        _ action: String, id: String, actor: AuditActor, details: [String: JSONValue] = [:], on connection: PostgresConnection
    ) async throws {
        try await AuditSQL.insert(
            NewAuditEvent(workspaceID: workspaceID, actor: actor, action: action, targetType: "webhook", targetID: id, details: details),
            into: .workspace, on: connection, logger: logger)
    }

    public func create(id: String, projectID: String, settings: WebhookSettings, secret: String, by actor: AuditActor) async throws
        -> WebhookRecord?
    {
        let (logger, ws) = (self.logger, workspaceID)
        let events = settings.events.map(\.rawValue)
        return try await server.transaction { connection in
            // The project's row serializes creations, so the cap holds under concurrent requests.
            try await connection.query(
                "SELECT 1 FROM projects WHERE workspace_id = \(ws) AND id = \(projectID) FOR UPDATE", logger: logger)
            var count = 0
            for try await n in try await connection.query(
                "SELECT count(*)::int FROM webhooks WHERE workspace_id = \(ws) AND project_id = \(projectID)", logger: logger
            ).decode(Int.self) {
                count = n
            }
            guard count < WebhookRules.maxPerProject else { return nil }
            try await connection.query(
                """
                INSERT INTO webhooks (workspace_id, id, project_id, url, events, format, description, active, secret, created_by)
                VALUES (\(ws), \(id), \(projectID), \(settings.url), \(events)::text[], \(settings.format.rawValue), \(settings.description),
                        \(settings.active), \(secret), \(actor.id))
                """, logger: logger)
            try await audit(
                "webhook.created", id: id, actor: actor, details: ["url": .string(settings.url), "projectId": .string(projectID)],
                on: connection)
            return try await Self.webhook(id: id, workspaceID: ws, on: connection, logger: logger)
        }
    }

    public func webhooks(projectID: String) async throws -> [WebhookRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var query = PostgresQuery(unsafeSQL: Self.columns + " WHERE workspace_id = $1 AND project_id = $2 ORDER BY id")
            query.binds.append(ws)
            query.binds.append(projectID)
            var out: [WebhookRecord] = []
            for try await row in try await connection.query(query, logger: logger) { out.append(try Self.decode(row)) }
            return out
        }
    }

    public func webhook(id: String) async throws -> WebhookRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { try await Self.webhook(id: id, workspaceID: ws, on: $0, logger: logger) }
    }

    public func update(id: String, settings: WebhookSettings, by actor: AuditActor) async throws -> WebhookRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        let events = settings.events.map(\.rawValue)
        return try await server.transaction { connection in
            var found = false
            for try await _ in try await connection.query(
                """
                UPDATE webhooks SET url = \(settings.url), events = \(events)::text[], format = \(settings.format.rawValue),
                       description = \(settings.description), active = \(settings.active),
                       disabled_reason = CASE WHEN \(settings.active) THEN NULL ELSE disabled_reason END,
                       failing_since = CASE WHEN \(settings.active) AND NOT active THEN NULL ELSE failing_since END, updated_at = now()
                WHERE workspace_id = \(ws) AND id = \(id) RETURNING id
                """, logger: logger
            ).decode(String.self) {
                found = true
            }
            guard found else { return nil }
            try await audit("webhook.updated", id: id, actor: actor, details: ["active": .bool(settings.active)], on: connection)
            return try await Self.webhook(id: id, workspaceID: ws, on: connection, logger: logger)
        }
    }

    public func delete(id: String, by actor: AuditActor) async throws -> Bool {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.transaction { connection in
            var found = false
            for try await _ in try await connection.query(
                "DELETE FROM webhooks WHERE workspace_id = \(ws) AND id = \(id) RETURNING id", logger: logger
            ).decode(String.self) {
                found = true
            }
            guard found else { return false }
            try await connection.query(
                "DELETE FROM webhook_deliveries WHERE workspace_id = \(ws) AND webhook_id = \(id)", logger: logger)
            try await audit("webhook.deleted", id: id, actor: actor, on: connection)
            return true
        }
    }

    public func rotateSecret(id: String, secret: String, graceSeconds: Int, by actor: AuditActor) async throws -> WebhookRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.transaction { connection in
            var found = false
            for try await _ in try await connection.query(
                """
                UPDATE webhooks SET previous_secret = secret, secret = \(secret),
                       previous_until = now() + make_interval(secs => \(Double(graceSeconds))), updated_at = now()
                WHERE workspace_id = \(ws) AND id = \(id) RETURNING id
                """, logger: logger
            ).decode(String.self) {
                found = true
            }
            guard found else { return nil }
            try await audit("webhook.secret_rotated", id: id, actor: actor, details: ["graceSeconds": .int(graceSeconds)], on: connection)
            return try await Self.webhook(id: id, workspaceID: ws, on: connection, logger: logger)
        }
    }

    static let deliveryColumns = """
        SELECT id, webhook_id, event_id, event_kind, state, attempts, last_status, last_latency_ms, last_response, last_error,
               CASE WHEN state = 'pending' THEN next_attempt_at END, delivered_at, created_at
        FROM webhook_deliveries
        """

    static func decodeDelivery(_ row: PostgresRow) throws -> WebhookDeliveryRecord {
        let r = try row.decode((String, String, String, String, String, Int, Int?, Int?, String?, String?, Date?, Date?, Date).self)
        return WebhookDeliveryRecord(
            id: r.0, webhookID: r.1, eventID: r.2, eventKind: r.3, state: .init(rawValue: r.4) ?? .pending, attempts: r.5,
            lastStatus: r.6, lastLatencyMs: r.7, lastResponse: r.8, lastError: r.9, nextAttemptAt: r.10, deliveredAt: r.11,
            createdAt: r.12)
    }

    public func deliveries(webhookID: String, before: String?, limit: Int) async throws -> [WebhookDeliveryRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            // Newest first by event (the order they are sent in); the cursor is the last event id seen.
            var query = PostgresQuery(
                unsafeSQL: Self.deliveryColumns
                    + " WHERE workspace_id = $1 AND webhook_id = $2 AND ($3 = '' OR event_id < $3) ORDER BY event_id DESC LIMIT $4")
            query.binds.append(ws)
            query.binds.append(webhookID)
            query.binds.append(before ?? "")
            query.binds.append(limit)
            var out: [WebhookDeliveryRecord] = []
            for try await row in try await connection.query(query, logger: logger) { out.append(try Self.decodeDelivery(row)) }
            return out
        }
    }

    public func redeliver(webhookID: String, deliveryID: String) async throws -> WebhookDeliveryRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.transaction { connection in
            var found = false
            for try await _ in try await connection.query(
                """
                UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now(), leased_until = NULL
                WHERE workspace_id = \(ws) AND webhook_id = \(webhookID) AND id = \(deliveryID) RETURNING id
                """, logger: logger
            ).decode(String.self) {
                found = true
            }
            return found ? try await Self.delivery(id: deliveryID, workspaceID: ws, on: connection, logger: logger) : nil
        }
    }

    static func delivery(id: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger) async throws
        -> WebhookDeliveryRecord?
    {
        var query = PostgresQuery(unsafeSQL: deliveryColumns + " WHERE workspace_id = $1 AND id = $2")
        query.binds.append(ws)
        query.binds.append(id)
        for try await row in try await connection.query(query, logger: logger) { return try decodeDelivery(row) }
        return nil
    }

    public func ping(webhookID: String, by actor: AuditActor) async throws -> WebhookDeliveryRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        let eventID = ResourceID.make(.event)
        let deliveryID = ResourceID.make(.delivery)
        return try await server.transaction { connection in
            var project: String?
            for try await id in try await connection.query(
                "SELECT project_id FROM webhooks WHERE workspace_id = \(ws) AND id = \(webhookID)", logger: logger
            ).decode(String.self) {
                project = id
            }
            guard let project else { return nil }
            let payload = #"{"webhookId":"\#(webhookID)","by":"\#(actor.id.replacingOccurrences(of: "\"", with: ""))"}"#
            try await connection.query(
                """
                WITH e AS (
                    INSERT INTO events (workspace_id, id, project_id, kind, subject_id, payload)
                    VALUES (\(ws), \(eventID), \(project), 'webhook.ping', \(webhookID), \(payload)::jsonb))
                INSERT INTO webhook_deliveries (workspace_id, id, webhook_id, event_id, event_kind)
                VALUES (\(ws), \(deliveryID), \(webhookID), \(eventID), 'webhook.ping')
                """, logger: logger)
            return try await Self.delivery(id: deliveryID, workspaceID: ws, on: connection, logger: logger)
        }
    }
}
