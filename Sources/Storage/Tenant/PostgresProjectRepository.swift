import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's projects, its write sequence and project stats, in PostgreSQL.
public struct PostgresProjectRepository: ProjectRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// The last write sequence number persisted for this workspace (0 when none).
    public func writeSequence() async throws -> Int64 {
        let logger = self.logger
        let workspaceID = self.workspaceID
        return try await server.run { connection in
            for try await seq in try await connection.query(
                "SELECT write_seq FROM workspace_state WHERE workspace_id = \(workspaceID)", logger: logger
            ).decode(Int64.self) {
                return seq
            }
            return 0
        }
    }

    public func projects() async throws -> [Project] {
        let logger = self.logger
        let workspaceID = self.workspaceID
        return try await server.run { connection in
            var result: [Project] = []
            let rows = try await connection.query(
                """
                SELECT id, slug, name, access_mode, default_branch, created_seq, created_at
                FROM projects WHERE workspace_id = \(workspaceID) ORDER BY slug
                """, logger: logger)
            for try await (id, slug, name, mode, branch, seq, createdAt) in rows.decode(
                (String, String, String, String, String, Int64, Date).self)
            {
                result.append(
                    Project(
                        workspaceID: workspaceID, id: id, slug: slug, name: name,
                        accessMode: AccessMode(rawValue: mode) ?? .team, defaultBranch: branch, createdSeq: seq,
                        createdAt: createdAt))
            }
            return result
        }
    }

    /// Inserts the project and records `seq` as the workspace's write sequence, in one transaction.
    public func insertProject(
        slug: String, name: String, accessMode: AccessMode, defaultBranch: String, seq: Int64, by actor: AuditActor? = nil
    ) async throws -> Project {
        let id = ResourceID.make(.project)
        let logger = self.logger
        let workspaceID = self.workspaceID
        let createdAt = try await server.transaction { connection -> Date in
            try await Self.recordSequence(seq, workspaceID: workspaceID, on: connection, logger: logger)
            let rows = try await connection.query(
                """
                INSERT INTO projects (workspace_id, id, slug, name, access_mode, default_branch, created_seq)
                VALUES (\(workspaceID), \(id), \(slug), \(name), \(accessMode.rawValue), \(defaultBranch), \(seq))
                RETURNING created_at
                """, logger: logger)
            var created: Date?
            for try await createdAt in rows.decode(Date.self) { created = createdAt }
            guard let created else { throw StorageError.configuration("project insert returned no row") }
            if let actor {
                try await AuditSQL.insert(
                    NewAuditEvent(
                        workspaceID: workspaceID, actor: actor, action: "project.created", targetType: "project", targetID: id,
                        details: ["slug": .string(slug), "accessMode": .string(accessMode.rawValue)]),
                    into: .workspace, on: connection, logger: logger)
            }
            return created
        }
        return Project(
            workspaceID: workspaceID, id: id, slug: slug, name: name, accessMode: accessMode,
            defaultBranch: defaultBranch, createdSeq: seq, createdAt: createdAt)
    }

    static func recordSequence(_ seq: Int64, workspaceID: String, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        try await connection.query(
            """
            INSERT INTO workspace_state (workspace_id, write_seq) VALUES (\(workspaceID), \(seq))
            ON CONFLICT (workspace_id) DO UPDATE SET write_seq = GREATEST(workspace_state.write_seq, EXCLUDED.write_seq)
            """, logger: logger)
    }

    /// Stats of every project of the workspace, by project id, in one query.
    public func projectStats() async throws -> [String: ProjectStatsRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var result: [String: ProjectStatsRecord] = [:]
            let rows = try await connection.query(
                """
                SELECT p.id,
                       (SELECT r.created_at FROM runs r WHERE r.workspace_id = p.workspace_id AND r.project_id = p.id AND r.seq IS NOT NULL
                        ORDER BY r.seq DESC LIMIT 1),
                       (SELECT sum(d.passed)::float8 / NULLIF(sum(d.passed + d.failed + d.broken), 0)
                        FROM project_daily d
                        WHERE d.workspace_id = p.workspace_id AND d.project_id = p.id
                          AND d.day >= (now() AT TIME ZONE 'UTC')::date - 29),
                       (SELECT count(*)::int FROM case_stats s
                        WHERE s.workspace_id = p.workspace_id AND s.project_id = p.id AND s.is_flaky)
                FROM projects p WHERE p.workspace_id = \(ws)
                """, logger: logger)
            for try await (id, last, rate, flaky) in rows.decode((String, Date?, Double?, Int).self) {
                result[id] = ProjectStatsRecord(lastRunAt: last, passRate30d: rate, flakyCount: flaky)
            }
            return result
        }
    }

    public func projectHistory(projectID: String, topSuites: Int = 5) async throws -> ProjectHistoryRecord {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var first: Date?
            var last: Date?
            var count = 0
            for try await (f, l, c) in try await connection.query(
                "SELECT min(created_at), max(created_at), count(*)::int FROM runs WHERE workspace_id = \(ws) AND project_id = \(projectID) AND seq IS NOT NULL",
                logger: logger
            ).decode((Date?, Date?, Int).self) {
                (first, last, count) = (f, l, c)
            }
            var suites: [(String, Int)] = []
            for try await (suite, failures) in try await connection.query(
                """
                SELECT COALESCE(c.suite, ''), sum(s.failed + s.broken)::int AS failures
                FROM case_stats s JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                WHERE s.workspace_id = \(ws) AND s.project_id = \(projectID)
                GROUP BY 1 HAVING sum(s.failed + s.broken) > 0 ORDER BY 2 DESC, 1 LIMIT \(topSuites)
                """, logger: logger
            ).decode((String, Int).self) {
                suites.append((suite, failures))
            }
            return ProjectHistoryRecord(firstRunAt: first, lastRunAt: last, runCount: count, topFailingSuites: suites)
        }
    }
}
