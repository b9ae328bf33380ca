import Domains
import Foundation
import Logging
import PostgresNIO

/// Turns one server's numbered events into people's notifications, in the catalog.
///
/// The catalog keeps how far each server's log has been read (`notifier_cursors`); notifications and the
/// cursor's advance commit together, and each (person, event) pair is unique, so every event reaches each
/// recipient exactly once whichever node runs this and however often. Notifiers take turns (an advisory lock
/// on the catalog), so notification numbers follow commit order and a stream resumes after one safely.
public struct Notifier: Sendable {
    let source: PhysicalServer
    let catalog: PhysicalServer
    let logger: Logger

    public init(source: PhysicalServer, catalog: PhysicalServer, logger: Logger) {
        self.source = source
        self.catalog = catalog
        self.logger = logger
    }

    static let channel = "kaizen_notifications"

    /// Reads up to `batch` events after the cursor and stores their notifications. Returns the people who got
    /// one, and whether more events may be waiting.
    public func run(batch: Int = 1_000) async throws -> (users: Set<String>, more: Bool) {
        let logger = self.logger
        let index = source.index
        let cursor = try await catalog.run { connection -> Int64? in
            var pos: Int64?
            for try await value in try await connection.query(
                "SELECT pos FROM notifier_cursors WHERE server_index = \(index)", logger: logger
            ).decode(Int64.self) {
                pos = value
            }
            return pos
        }
        guard let cursor else {
            // First run: notifications start now, not with the history written before they existed.
            let latest = try await source.run { connection -> Int64 in
                var latest: Int64 = 0
                for try await value in try await connection.query(
                    "SELECT COALESCE(max(pos), 0)::bigint FROM events WHERE pos IS NOT NULL", logger: logger
                ).decode(Int64.self) {
                    latest = value
                }
                return latest
            }
            try await catalog.run { connection in
                try await connection.query(
                    "INSERT INTO notifier_cursors (server_index, pos) VALUES (\(index), \(latest)) ON CONFLICT DO NOTHING",
                    logger: logger)
            }
            return ([], true)
        }
        let kinds = NotificationRules.kinds
        let (upper, scanned, events, access) = try await source.run { connection in
            var upper: Int64?
            var scanned = 0
            for try await (maxPos, count) in try await connection.query(
                """
                SELECT max(pos), count(*)::int FROM (SELECT pos FROM events WHERE pos IS NOT NULL AND pos > \(cursor)
                                                     ORDER BY pos LIMIT \(batch)) w
                """, logger: logger
            ).decode((Int64?, Int).self) {
                upper = maxPos
                scanned = count
            }
            var events: [(workspace: String, event: NotifiableEvent)] = []
            var access: [String: AccessMode] = [:]
            if let upper {
                for try await (id, kind, ws, project, slug, branch, mode, payload) in try await connection.query(
                    """
                    SELECT e.id, e.kind, e.workspace_id, e.project_id, p.slug, p.default_branch, p.access_mode, e.payload::text
                    FROM events e JOIN projects p ON p.workspace_id = e.workspace_id AND p.id = e.project_id
                    WHERE e.pos IS NOT NULL AND e.pos > \(cursor) AND e.pos <= \(upper) AND e.kind = ANY(\(kinds)::text[])
                    ORDER BY e.pos
                    """, logger: logger
                ).decode((String, String, String, String, String, String, String, String).self) {
                    events.append(
                        (ws, NotifiableEvent(id: id, kind: kind, projectID: project, projectSlug: slug, defaultBranch: branch, payload: payload)))
                    access[project] = AccessMode(rawValue: mode) ?? .private
                }
            }
            return (upper, scanned, events, access)
        }
        guard let upper else { return ([], false) }
        let byWorkspace = Dictionary(grouping: events, by: \.workspace).mapValues { $0.map(\.event) }
        let slugs = Dictionary(events.map { ($0.event.projectID, $0.event.projectSlug) }, uniquingKeysWith: { a, _ in a })
        let users = try await catalog.transaction { connection -> Set<String>? in
            try await connection.query("SELECT pg_advisory_xact_lock(8231, 2)", logger: logger)
            var current: Int64?
            for try await value in try await connection.query(
                "SELECT pos FROM notifier_cursors WHERE server_index = \(index) FOR UPDATE", logger: logger
            ).decode(Int64.self) {
                current = value
            }
            // Another node got here first: start again from where it left off.
            guard current == cursor else { return nil }
            var rows = NotificationRows()
            if !byWorkspace.isEmpty {
                let workspaces = Array(byWorkspace.keys)
                var members: [String: [(String, Role)]] = [:]
                for try await (ws, user, role) in try await connection.query(
                    "SELECT workspace_id, user_id, role FROM memberships WHERE workspace_id = ANY(\(workspaces)::text[])", logger: logger
                ).decode((String, String, String).self) {
                    if let role = Role(rawValue: role) { members[ws, default: []].append((user, role)) }
                }
                var chosen: [String: Set<NotificationCategory>] = [:]
                for try await (ws, user, project, categories) in try await connection.query(
                    """
                    SELECT workspace_id, user_id, project_id, categories FROM notification_preferences
                    WHERE workspace_id = ANY(\(workspaces)::text[])
                    """, logger: logger
                ).decode((String, String, String, [String]).self) {
                    chosen["\(ws)/\(user)/\(project)"] = Set(categories.compactMap(NotificationCategory.init(rawValue:)))
                }
                for (ws, wsEvents) in byWorkspace.sorted(by: { $0.key < $1.key }) {
                    let openedBy = Dictionary(
                        wsEvents.compactMap { event -> (String, String)? in
                            guard event.kind == "defect.opened",
                                let object = try? JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any],
                                let by = object["openedBy"] as? String
                            else { return nil }
                            return (event.id, by)
                        }, uniquingKeysWith: { a, _ in a })
                    for draft in NotificationRules.drafts(for: wsEvents) {
                        for (user, role) in members[ws] ?? [] {
                            guard (access[draft.projectID] ?? .private).visible(to: role, tokenClass: .user),
                                (chosen["\(ws)/\(user)/\(draft.projectID)"] ?? NotificationCategory.defaults(for: role)).contains(draft.category),
                                openedBy[draft.eventID] != user
                            else { continue }
                            rows.append(draft, user: user, workspaceID: ws, projectSlug: slugs[draft.projectID])
                        }
                    }
                }
            }
            var notified: Set<String> = []
            if !rows.ids.isEmpty {
                for try await user in try await connection.query(
                    """
                    INSERT INTO notifications (id, user_id, workspace_id, project_id, project_slug, category, severity, title, body, url,
                                               payload, event_id)
                    SELECT t.id, t.user_id, t.ws, t.project, t.slug, t.category, t.severity, t.title, t.body, NULLIF(t.url, ''),
                           t.payload::jsonb, t.event
                    FROM UNNEST(\(rows.ids)::text[], \(rows.users)::text[], \(rows.workspaces)::text[], \(rows.projects)::text[],
                                \(rows.slugs)::text[], \(rows.categories)::text[], \(rows.severities)::text[], \(rows.titles)::text[],
                                \(rows.bodies)::text[], \(rows.urls)::text[], \(rows.payloads)::text[], \(rows.events)::text[])
                         WITH ORDINALITY AS t(id, user_id, ws, project, slug, category, severity, title, body, url, payload, event, n)
                    ORDER BY t.n
                    ON CONFLICT DO NOTHING
                    RETURNING user_id
                    """, logger: logger
                ).decode(String.self) {
                    notified.insert(user)
                }
            }
            try await connection.query("UPDATE notifier_cursors SET pos = \(upper) WHERE server_index = \(index)", logger: logger)
            if !notified.isEmpty {
                let joined = notified.sorted().joined(separator: ",")
                let payload = joined.utf8.count > EventLog.maxPayloadBytes ? "*" : joined
                try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
            }
            return notified
        }
        guard let users else { return ([], true) }
        return (users, scanned == batch)
    }
}

/// Columns for one multi-row insert.
struct NotificationRows {
    var ids: [String] = [], users: [String] = [], workspaces: [String] = [], projects: [String] = [], slugs: [String] = []
    var categories: [String] = [], severities: [String] = [], titles: [String] = [], bodies: [String] = [], urls: [String] = []
    var payloads: [String] = [], events: [String] = []

    mutating func append(_ draft: NotificationDraft, user: String, workspaceID: String, projectSlug: String?) {
        ids.append(ResourceID.make(.notification))
        users.append(user)
        workspaces.append(workspaceID)
        projects.append(draft.projectID)
        slugs.append(projectSlug ?? "")
        categories.append(draft.category.rawValue)
        severities.append(draft.severity.rawValue)
        titles.append(draft.title)
        bodies.append(draft.body)
        urls.append(draft.url ?? "")
        payloads.append(draft.payload)
        events.append(draft.eventID)
    }
}
