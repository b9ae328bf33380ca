import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

extension CatalogStore: NotificationRepository {
    static let notificationColumns = """
        n.seq, n.id, n.workspace_id, w.slug, n.project_slug, n.category, n.severity, n.title, n.body, n.url, n.payload::text,
        n.read_at IS NOT NULL, n.created_at
        """

    static func notifications(_ rows: PostgresRowSequence) async throws -> [NotificationRecord] {
        var out: [NotificationRecord] = []
        for try await row in rows.decode(
            (Int64, String, String, String, String?, String, String, String, String, String?, String, Bool, Date).self)
        {
            out.append(
                NotificationRecord(
                    seq: row.0, id: row.1, workspaceID: row.2, workspaceSlug: row.3, projectSlug: row.4,
                    category: NotificationCategory(rawValue: row.5) ?? .newFailures, severity: NotificationSeverity(rawValue: row.6) ?? .info,
                    title: row.7, body: row.8, url: row.9, payload: row.10, read: row.11, createdAt: row.12))
        }
        return out
    }

    public func notifications(userID: String, query: NotificationQuery) async throws -> [NotificationRecord] {
        let logger = self.logger
        let before = query.before ?? Int64.max
        return try await server.run { connection in
            try await Self.notifications(
                try await connection.query(
                    """
                    SELECT \(unescaped: Self.notificationColumns)
                    FROM notifications n JOIN workspaces w ON w.id = n.workspace_id
                    WHERE n.user_id = \(userID) AND n.seq < \(before) AND (NOT \(query.unreadOnly) OR n.read_at IS NULL)
                    ORDER BY n.seq DESC LIMIT \(query.limit)
                    """, logger: logger))
        }
    }

    public func notifications(userID: String, after seq: Int64, limit: Int) async throws -> [NotificationRecord] {
        let logger = self.logger
        return try await server.run { connection in
            try await Self.notifications(
                try await connection.query(
                    """
                    SELECT \(unescaped: Self.notificationColumns)
                    FROM notifications n JOIN workspaces w ON w.id = n.workspace_id
                    WHERE n.user_id = \(userID) AND n.seq > \(seq)
                    ORDER BY n.seq LIMIT \(limit)
                    """, logger: logger))
        }
    }

    public func latestNotificationSeq(userID: String) async throws -> Int64 {
        try await scalar("SELECT COALESCE(max(seq), 0)::bigint FROM notifications WHERE user_id = \(userID)")
    }

    public func unreadCount(userID: String) async throws -> Int {
        Int(try await scalar("SELECT count(*)::bigint FROM notifications WHERE user_id = \(userID) AND read_at IS NULL"))
    }

    public func markRead(userID: String, id: String) async throws -> Bool {
        try await scalar(
            """
            WITH m AS (UPDATE notifications SET read_at = COALESCE(read_at, now()) WHERE user_id = \(userID) AND id = \(id) RETURNING 1)
            SELECT count(*)::bigint FROM m
            """) > 0
    }

    public func markAllRead(userID: String) async throws -> Int {
        Int(
            try await scalar(
                """
                WITH m AS (UPDATE notifications SET read_at = now() WHERE user_id = \(userID) AND read_at IS NULL RETURNING 1)
                SELECT count(*)::bigint FROM m
                """))
    }

    public func deleteNotification(userID: String, id: String) async throws -> Bool {
        try await scalar(
            "WITH d AS (DELETE FROM notifications WHERE user_id = \(userID) AND id = \(id) RETURNING 1) SELECT count(*)::bigint FROM d") > 0
    }

    public func notificationPreferences(userID: String, workspaceID: String, projectID: String) async throws -> Set<NotificationCategory>? {
        let logger = self.logger
        return try await server.run { connection in
            for try await categories in try await connection.query(
                """
                SELECT categories FROM notification_preferences
                WHERE user_id = \(userID) AND workspace_id = \(workspaceID) AND project_id = \(projectID)
                """, logger: logger
            ).decode([String].self) {
                return Set(categories.compactMap(NotificationCategory.init(rawValue:)))
            }
            return nil
        }
    }

    public func setNotificationPreferences(
        userID: String, workspaceID: String, projectID: String, categories: Set<NotificationCategory>?
    ) async throws {
        let logger = self.logger
        try await server.run { connection in
            if let categories {
                let values = categories.map(\.rawValue).sorted()
                try await connection.query(
                    """
                    INSERT INTO notification_preferences (user_id, workspace_id, project_id, categories)
                    VALUES (\(userID), \(workspaceID), \(projectID), \(values)::text[])
                    ON CONFLICT (user_id, workspace_id, project_id) DO UPDATE SET categories = EXCLUDED.categories, updated_at = now()
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    DELETE FROM notification_preferences
                    WHERE user_id = \(userID) AND workspace_id = \(workspaceID) AND project_id = \(projectID)
                    """, logger: logger)
            }
        }
    }

    /// One bigint from `query`.
    private func scalar(_ query: PostgresQuery) async throws -> Int64 {
        let logger = self.logger
        return try await server.run { connection in
            var value: Int64 = 0
            for try await v in try await connection.query(query, logger: logger).decode(Int64.self) { value = v }
            return value
        }
    }
}

extension CatalogStore {
    /// LISTENs for inboxes that grew (the notifier's NOTIFY, from any node) until cancelled; `nil` means anyone's
    /// (the payload said "*", or the listener has just (re)connected and may have missed some).
    public func followInboxes(_ handle: @escaping @Sendable (Set<String>?) -> Void) async {
        await server.follow(channels: [Notifier.channel], logger: logger, onListening: { handle(nil) }) { _, payload in
            handle(payload == "*" ? nil : Set(payload.split(separator: ",").map(String.init)))
        }
    }
}
