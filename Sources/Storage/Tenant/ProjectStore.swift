import Domains
import Foundation
import Logging
import PostgresNIO

/// Tenant rows of one workspace on its shard's server.
public struct TenantStore: Sendable {
    public let server: PhysicalServer
    public let workspaceID: String
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
        slug: String, name: String, accessMode: AccessMode, defaultBranch: String, seq: Int64
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
            for try await createdAt in rows.decode(Date.self) { return createdAt }
            throw StorageError.configuration("project insert returned no row")
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
            ON CONFLICT (workspace_id) DO UPDATE SET write_seq = EXCLUDED.write_seq
            """, logger: logger)
    }
}
