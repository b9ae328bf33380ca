import Domains
import Foundation
import Logging
import PostgresNIO

/// The webhook outbox on one physical server: deliveries are written with their events (one statement, in
/// the transaction of the change), claimed by senders on leases, and completed, rescheduled or given up.
///
/// Per webhook, only the oldest pending delivery is ever claimed, so a receiver sees its events in order
/// even while one is being retried; different webhooks proceed independently.
public struct WebhookOutbox: Sendable {
    public let server: PhysicalServer
    let logger: Logger

    public init(server: PhysicalServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    /// Completes `WITH e AS (INSERT INTO events … RETURNING workspace_id, id, project_id, kind)`: one delivery
    /// per event and active webhook of its project that subscribed to its kind.
    static let fanOut = """
        INSERT INTO webhook_deliveries (workspace_id, id, webhook_id, event_id, event_kind)
        SELECT e.workspace_id, 'dlv_' || replace(gen_random_uuid()::text, '-', ''), w.id, e.id, e.kind
        FROM e JOIN webhooks w ON w.workspace_id = e.workspace_id AND w.project_id = e.project_id AND w.active
                              AND e.kind = ANY(w.events)
        """

    /// A delivery claimed for sending, with what the sender needs.
    public struct Due: Sendable {
        public let workspaceID: String
        public let deliveryID: String
        public let webhookID: String
        public let url: String
        public let format: WebhookFormat
        /// The current secret, and the previous one while its rotation's grace period runs.
        public let secrets: [String]
        public let eventID: String
        public let kind: String
        public let payload: String
        public let eventCreatedAt: Date
        public let projectID: String
        public let projectSlug: String
        public let attempts: Int
        public let createdAt: Date
    }

    /// Claims up to `limit` due deliveries, each the oldest pending one of its webhook, on a lease of `lease`.
    public func claim(limit: Int, lease: Duration) async throws -> [Due] {
        let logger = self.logger
        let seconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        return try await server.transaction { connection in
            var claimed: [(String, String)] = []
            for try await (ws, id) in try await connection.query(
                """
                UPDATE webhook_deliveries d SET leased_until = now() + make_interval(secs => \(seconds)), attempts = d.attempts + 1
                FROM (SELECT h.workspace_id, h.id FROM (
                          SELECT DISTINCT ON (workspace_id, webhook_id) workspace_id, id, next_attempt_at, leased_until
                          FROM webhook_deliveries WHERE state = 'pending'
                          ORDER BY workspace_id, webhook_id, event_id) h
                      WHERE h.next_attempt_at <= now() AND (h.leased_until IS NULL OR h.leased_until < now())
                      LIMIT \(limit)) due
                WHERE d.workspace_id = due.workspace_id AND d.id = due.id AND d.state = 'pending'
                  AND (d.leased_until IS NULL OR d.leased_until < now())
                RETURNING d.workspace_id, d.id
                """, logger: logger
            ).decode((String, String).self) {
                claimed.append((ws, id))
            }
            guard !claimed.isEmpty else { return [] }
            var out: [Due] = []
            for try await row in try await connection.query(
                """
                SELECT d.workspace_id, d.id, w.id, w.url, w.format, w.secret,
                       CASE WHEN w.previous_until > now() THEN w.previous_secret END,
                       e.id, e.kind, e.payload::text, e.created_at, e.project_id, p.slug, d.attempts, d.created_at
                FROM webhook_deliveries d
                JOIN webhooks w ON w.workspace_id = d.workspace_id AND w.id = d.webhook_id
                JOIN events e ON e.workspace_id = d.workspace_id AND e.id = d.event_id
                JOIN projects p ON p.workspace_id = e.workspace_id AND p.id = e.project_id
                WHERE (d.workspace_id, d.id) IN (SELECT * FROM UNNEST(\(claimed.map(\.0))::text[], \(claimed.map(\.1))::text[]))
                ORDER BY d.event_id
                """, logger: logger
            ).decode((String, String, String, String, String, String, String?, String, String, String, Date, String, String, Int, Date).self) {
                out.append(
                    Due(
                        workspaceID: row.0, deliveryID: row.1, webhookID: row.2, url: row.3,
                        format: WebhookFormat(rawValue: row.4) ?? .kaizen, secrets: [row.5] + (row.6.map { [$0] } ?? []),
                        eventID: row.7, kind: row.8, payload: row.9, eventCreatedAt: row.10, projectID: row.11, projectSlug: row.12,
                        attempts: row.13, createdAt: row.14))
            }
            return out
        }
    }

    /// What sending a delivery came to.
    public enum Outcome: Sendable {
        case delivered(status: Int, latencyMs: Int, response: String)
        /// Tried again at `retryAt`.
        case retry(status: Int?, latencyMs: Int?, response: String?, error: String?, retryAt: Date)
        /// Given up; `disable` turns the webhook off with that reason.
        case failed(status: Int?, latencyMs: Int?, response: String?, error: String?, disable: String?)
    }

    public func record(_ due: Due, _ outcome: Outcome) async throws {
        let logger = self.logger
        let (ws, id, hook) = (due.workspaceID, due.deliveryID, due.webhookID)
        try await server.transaction { connection in
            switch outcome {
            case .delivered(let status, let latency, let response):
                try await connection.query(
                    """
                    UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), leased_until = NULL, last_status = \(status),
                           last_latency_ms = \(latency), last_response = \(response), last_error = NULL
                    WHERE workspace_id = \(ws) AND id = \(id)
                    """, logger: logger)
                try await connection.query(
                    "UPDATE webhooks SET failing_since = NULL WHERE workspace_id = \(ws) AND id = \(hook) AND failing_since IS NOT NULL",
                    logger: logger)
            case .retry(let status, let latency, let response, let error, let retryAt):
                try await connection.query(
                    """
                    UPDATE webhook_deliveries SET leased_until = NULL, next_attempt_at = \(retryAt), last_status = \(status),
                           last_latency_ms = \(latency), last_response = \(response), last_error = \(error)
                    WHERE workspace_id = \(ws) AND id = \(id)
                    """, logger: logger)
                try await connection.query(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, now()) WHERE workspace_id = \(ws) AND id = \(hook)",
                    logger: logger)
            case .failed(let status, let latency, let response, let error, let disable):
                try await connection.query(
                    """
                    UPDATE webhook_deliveries SET state = 'failed', leased_until = NULL, last_status = \(status),
                           last_latency_ms = \(latency), last_response = \(response), last_error = \(error)
                    WHERE workspace_id = \(ws) AND id = \(id)
                    """, logger: logger)
                if let disable {
                    // `webhook.disabled` with it: the project's admins are notified (and live streams see it).
                    let payload = String(
                        decoding: try JSONSerialization.data(
                            withJSONObject: ["webhookId": hook, "url": due.url, "reason": disable], options: [.sortedKeys]),
                        as: UTF8.self)
                    try await connection.query(
                        """
                        WITH w AS (
                            UPDATE webhooks SET active = false, disabled_reason = \(disable), updated_at = now()
                            WHERE workspace_id = \(ws) AND id = \(hook) AND active
                            RETURNING workspace_id, project_id)
                        INSERT INTO events (workspace_id, id, project_id, kind, subject_id, payload)
                        SELECT workspace_id, \(ResourceID.make(.event)), project_id, 'webhook.disabled', \(hook), \(payload)::jsonb FROM w
                        """, logger: logger)
                }
            }
        }
    }
}
