import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's defects and their links, in PostgreSQL.
public struct PostgresDefectRepository: DefectRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// Which of `ids` are defects of the project.
    public func existingDefects(projectID: String, ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await id in try await connection.query(
                "SELECT id FROM defects WHERE workspace_id = \(ws) AND project_id = \(projectID) AND id = ANY(\(ids)::text[])",
                logger: logger
            ).decode(String.self) {
                found.insert(id)
            }
            return found
        }
    }

    /// Which of `ids` are cases of the project.
    public func existingCases(projectID: String, ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await id in try await connection.query(
                "SELECT id FROM cases WHERE workspace_id = \(ws) AND project_id = \(projectID) AND id = ANY(\(ids)::text[])",
                logger: logger
            ).decode(String.self) {
                found.insert(id)
            }
            return found
        }
    }

    /// Which of `fingerprints` are failure clusters the project has seen.
    public func existingFailureGroups(projectID: String, fingerprints: [String]) async throws -> Set<String> {
        guard !fingerprints.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await id in try await connection.query(
                """
                SELECT fingerprint FROM failure_groups
                WHERE workspace_id = \(ws) AND project_id = \(projectID) AND fingerprint = ANY(\(fingerprints)::text[])
                """, logger: logger
            ).decode(String.self) {
                found.insert(id)
            }
            return found
        }
    }

    /// Creates a defect (status from `change`, default open), links it, counts the runs it already
    /// struck and stores `defect.opened`.
    public func createDefect(projectID: String, change: DefectChange, by auditActor: AuditActor) async throws -> DefectRecord {
        let (logger, ws) = (self.logger, workspaceID)
        let actor = auditActor.id
        let id = ResourceID.make(.defect)
        let status = change.status ?? .open
        let title = change.title ?? ""
        let url = change.externalURL ?? nil
        return try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO defects (workspace_id, id, project_id, title, external_url, status, created_by, updated_by)
                VALUES (\(ws), \(id), \(projectID), \(title), \(url), \(status.rawValue), \(actor), \(actor))
                """, logger: logger)
            try await Self.replaceLinks(
                defectID: id, projectID: projectID, kind: "case", targets: change.caseIDs ?? [], by: actor, workspaceID: ws,
                on: connection, logger: logger)
            try await Self.replaceLinks(
                defectID: id, projectID: projectID, kind: "group", targets: change.fingerprints ?? [], by: actor,
                workspaceID: ws, on: connection, logger: logger)
            try await Self.recountDefectRuns(defectID: id, workspaceID: ws, on: connection, logger: logger)
            let payload: [String: Any] = [
                "defectId": id, "title": title, "externalUrl": url ?? NSNull(), "status": status.rawValue,
                "caseIds": change.caseIDs ?? [], "fingerprints": change.fingerprints ?? [], "openedBy": actor,
            ]
            try await RollUp.recordEvents(
                ids: [ResourceID.make(.event)], projectID: projectID, kind: "defect.opened", subjects: [id],
                payloads: [String(decoding: try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]), as: UTF8.self)],
                workspaceID: ws, on: connection, logger: logger)
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: ws, actor: auditActor, action: "defect.created", targetType: "defect", targetID: id,
                    details: ["project": .string(projectID), "status": .string(status.rawValue)]),
                into: .workspace, on: connection, logger: logger)
            // Read back in the transaction that wrote it: absent only if the INSERT above silently did nothing.
            guard let record = try await Self.defect(id: id, workspaceID: ws, on: connection, logger: logger) else {
                throw DefectNotWritten(id: id)
            }
            return record
        }
    }

    /// Applies `change`; nil when the defect does not exist in this workspace.
    public func updateDefect(id: String, change: DefectChange, by auditActor: AuditActor) async throws -> DefectRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        let actor = auditActor.id
        return try await server.transaction { connection in
            var projectID: String?
            for try await project in try await connection.query(
                "SELECT project_id FROM defects WHERE workspace_id = \(ws) AND id = \(id) FOR UPDATE", logger: logger
            ).decode(String.self) {
                projectID = project
            }
            guard let projectID else { return nil }
            let setURL = change.externalURL != nil
            let url = change.externalURL ?? nil
            try await connection.query(
                """
                UPDATE defects SET title = COALESCE(\(change.title), title),
                       external_url = CASE WHEN \(setURL) THEN \(url) ELSE external_url END,
                       status = COALESCE(\(change.status?.rawValue), status), updated_by = \(actor), updated_at = now()
                WHERE workspace_id = \(ws) AND id = \(id)
                """, logger: logger)
            if let cases = change.caseIDs {
                try await Self.replaceLinks(
                    defectID: id, projectID: projectID, kind: "case", targets: cases, by: actor, workspaceID: ws,
                    on: connection, logger: logger)
            }
            if let groups = change.fingerprints {
                try await Self.replaceLinks(
                    defectID: id, projectID: projectID, kind: "group", targets: groups, by: actor, workspaceID: ws,
                    on: connection, logger: logger)
            }
            if change.caseIDs != nil || change.fingerprints != nil {
                try await Self.recountDefectRuns(defectID: id, workspaceID: ws, on: connection, logger: logger)
            }
            var details: [String: JSONValue] = [:]
            if let status = change.status { details["status"] = .string(status.rawValue) }
            if change.title != nil { details["title"] = true }
            if change.externalURL != nil { details["externalUrl"] = true }
            if change.caseIDs != nil { details["cases"] = true }
            if change.fingerprints != nil { details["failureGroups"] = true }
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: ws, actor: auditActor, action: "defect.updated", targetType: "defect", targetID: id,
                    details: details),
                into: .workspace, on: connection, logger: logger)
            return try await Self.defect(id: id, workspaceID: ws, on: connection, logger: logger)
        }
    }

    public func defect(id: String) async throws -> DefectRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            try await Self.defect(id: id, workspaceID: ws, on: connection, logger: logger)
        }
    }

    /// A page of the project's defects, newest first, optionally in one status.
    public func defects(projectID: String, status: DefectStatus?, before: String?, limit: Int) async throws -> [DefectRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let filter = status?.rawValue ?? ""
        let cursor = before ?? "~"
        return try await server.run { connection in
            var ids: [String] = []
            for try await id in try await connection.query(
                """
                SELECT id FROM defects WHERE workspace_id = \(ws) AND project_id = \(projectID)
                  AND (\(filter) = '' OR status = \(filter)) AND id < \(cursor)
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            var out: [DefectRecord] = []
            for id in ids {
                if let record = try await Self.defect(id: id, workspaceID: ws, on: connection, logger: logger) { out.append(record) }
            }
            return out
        }
    }

    /// Open and acknowledged defect counts of a project.
    public func defectCounts(projectID: String) async throws -> [DefectStatus: Int] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var counts: [DefectStatus: Int] = [:]
            for try await (status, count) in try await connection.query(
                "SELECT status, count(*)::int FROM defects WHERE workspace_id = \(ws) AND project_id = \(projectID) GROUP BY status",
                logger: logger
            ).decode((String, Int).self) {
                if let status = DefectStatus(rawValue: status) { counts[status] = count }
            }
            return counts
        }
    }

    /// Defects linked to each of the given clusters (by fingerprint) or cases (by id) of a project.
    public func defectsLinked(projectID: String, fingerprints: [String], caseIDs: [String]) async throws
        -> (byGroup: [String: [DefectRef]], byCase: [String: [DefectRef]])
    {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var byGroup: [String: [DefectRef]] = [:]
            var byCase: [String: [DefectRef]] = [:]
            for try await (kind, target, id, title, status) in try await connection.query(
                """
                SELECT l.kind, l.target, d.id, d.title, d.status
                FROM defect_links l JOIN defects d ON d.workspace_id = l.workspace_id AND d.id = l.defect_id
                WHERE l.workspace_id = \(ws) AND l.project_id = \(projectID)
                  AND ((l.kind = 'group' AND l.target = ANY(\(fingerprints)::text[])) OR (l.kind = 'case' AND l.target = ANY(\(caseIDs)::text[])))
                ORDER BY d.id
                """, logger: logger
            ).decode((String, String, String, String, String).self) {
                let ref = DefectRef(id: id, title: title, status: DefectStatus(rawValue: status) ?? .open)
                if kind == "group" { byGroup[target, default: []].append(ref) } else { byCase[target, default: []].append(ref) }
            }
            return (byGroup, byCase)
        }
    }

    static func replaceLinks(
        defectID: String, projectID: String, kind: String, targets: [String], by actor: String, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.query(
            """
            DELETE FROM defect_links WHERE workspace_id = \(ws) AND defect_id = \(defectID) AND kind = \(kind)
              AND NOT (target = ANY(\(targets)::text[]))
            """, logger: logger)
        try await connection.query(
            """
            INSERT INTO defect_links (workspace_id, defect_id, project_id, kind, target, linked_by)
            SELECT \(ws), \(defectID), \(projectID), \(kind), t, \(actor) FROM UNNEST(\(targets)::text[]) AS t
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Recounts the runs a defect struck from its links: one index lookup per linked case (case, run)
    /// and per linked cluster (fingerprint), never a scan of the project's results.
    /// Later runs are added by the roll-up of each run.
    static func recountDefectRuns(defectID: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        try await connection.query(
            "DELETE FROM defect_runs WHERE workspace_id = \(ws) AND defect_id = \(defectID)", logger: logger)
        try await connection.query(
            """
            INSERT INTO defect_runs (workspace_id, defect_id, run_id, run_at)
            SELECT \(ws), \(defectID), u.id, u.created_at
            FROM (SELECT r.run_id FROM defect_links l
                  JOIN case_results r ON r.workspace_id = l.workspace_id AND r.case_id = l.target
                  WHERE l.workspace_id = \(ws) AND l.defect_id = \(defectID) AND l.kind = 'case' AND r.status = ANY(\(CaseStatus.failingValues))
                  UNION
                  SELECT r.run_id FROM defect_links l
                  JOIN case_results r ON r.workspace_id = l.workspace_id AND r.fingerprint = l.target
                  WHERE l.workspace_id = \(ws) AND l.defect_id = \(defectID) AND l.kind = 'group' AND r.status = ANY(\(CaseStatus.failingValues))) hit
            JOIN runs u ON u.workspace_id = \(ws) AND u.id = hit.run_id AND u.seq IS NOT NULL
            JOIN defects d ON d.workspace_id = \(ws) AND d.id = \(defectID) AND d.project_id = u.project_id
            """, logger: logger)
    }

    static func defect(id: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger) async throws
        -> DefectRecord?
    {
        var head: (String, String, String?, String, String, Date, String, Date)?
        for try await row in try await connection.query(
            """
            SELECT project_id, title, external_url, status, created_by, created_at, updated_by, updated_at
            FROM defects WHERE workspace_id = \(ws) AND id = \(id)
            """, logger: logger
        ).decode((String, String, String?, String, String, Date, String, Date).self) {
            head = row
        }
        guard let head else { return nil }
        var cases: [DefectRecord.LinkedCase] = []
        for try await (caseID, name) in try await connection.query(
            """
            SELECT c.id, c.name FROM defect_links l JOIN cases c ON c.workspace_id = l.workspace_id AND c.id = l.target
            WHERE l.workspace_id = \(ws) AND l.defect_id = \(id) AND l.kind = 'case' ORDER BY c.name, c.id
            """, logger: logger
        ).decode((String, String).self) {
            cases.append(.init(id: caseID, name: name))
        }
        var groups: [DefectRecord.LinkedGroup] = []
        for try await (fingerprint, type, message) in try await connection.query(
            """
            SELECT l.target, g.error_type, g.sample_message FROM defect_links l
            LEFT JOIN failure_groups g ON g.workspace_id = l.workspace_id AND g.project_id = l.project_id AND g.fingerprint = l.target
            WHERE l.workspace_id = \(ws) AND l.defect_id = \(id) AND l.kind = 'group' ORDER BY l.target
            """, logger: logger
        ).decode((String, String?, String?).self) {
            groups.append(.init(fingerprint: fingerprint, errorType: type, sampleMessage: message))
        }
        var affected = 0
        var lastRun: String?
        var lastAt: Date?
        for try await (count, run, at) in try await connection.query(
            """
            SELECT (SELECT count(*)::int FROM defect_runs WHERE workspace_id = \(ws) AND defect_id = \(id)), r.run_id, r.run_at
            FROM (SELECT 1) one LEFT JOIN LATERAL (
                SELECT run_id, run_at FROM defect_runs WHERE workspace_id = \(ws) AND defect_id = \(id)
                ORDER BY run_at DESC, run_id DESC LIMIT 1) r ON true
            """, logger: logger
        ).decode((Int, String?, Date?).self) {
            (affected, lastRun, lastAt) = (count, run, at)
        }
        return DefectRecord(
            id: id, projectID: head.0, title: head.1, externalURL: head.2, status: DefectStatus(rawValue: head.3) ?? .open,
            createdBy: head.4, createdAt: head.5, updatedBy: head.6, updatedAt: head.7, cases: cases, failureGroups: groups,
            affectedRuns: affected, lastAffectedRunID: lastRun, lastAffectedAt: lastAt)
    }
}

/// A defect that its own transaction cannot read back; never expected, reported as a 500.
struct DefectNotWritten: Error, CustomStringConvertible {
    let id: String
    var description: String { "defect \(id) was not found right after it was written" }
}
