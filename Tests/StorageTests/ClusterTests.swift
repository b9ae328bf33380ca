import Domains
import KaizenTestSupport
import Logging
import PostgresNIO
import Testing

@testable import Storage

/// Opens a cluster on fresh databases of both test servers, runs `body`, closes the pools.
func withCluster<T: Sendable>(
    shards: Int = 8, _ body: (StorageCluster, [PhysicalServer]) async throws -> T
) async throws -> T {
    let urls = try await TestPostgres.shared.freshDatabases()
    return try await withServers(urls: urls) { servers in
        let cluster = try await StorageCluster.open(servers: servers, logicalShards: shards, logger: testLogger)
        return try await body(cluster, servers)
    }
}

func withServers<T: Sendable>(urls: [DatabaseURL], _ body: ([PhysicalServer]) async throws -> T) async throws -> T {
    let servers = try StorageCluster.makeServers(urls: urls, maxConnectionsPerServer: 4, acquireTimeout: testAcquireTimeout, logger: testLogger)
    let pools = Task { await StorageCluster.runPools(servers) }
    defer { pools.cancel() }
    return try await body(servers)
}

let testLogger: Logger = {
    var logger = Logger(label: "kaizen.storage-tests")
    logger.logLevel = .warning
    return logger
}()

@Suite struct ClusterTests {
    @Test func migrationsAreIdempotent() async throws {
        try await withCluster { _, servers in
            let migrator = Migrator(logger: testLogger)
            #expect(try await migrator.migrate(servers[0], scope: .catalog).isEmpty)
            for server in servers {
                #expect(try await migrator.migrate(server, scope: .shard).isEmpty)
            }
            // Concurrent migrators (several nodes starting at once) apply nothing twice.
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await migrator.migrate(servers[1], scope: .shard) } }
                for try await applied in group { #expect(applied.isEmpty) }
            }
        }
    }

    /// Migration 18 folds the step rows a server already holds into one row per case, readable as pushed.
    @Test func stepRowsOfAnOlderSchemaBecomeOneRowPerCase() async throws {
        try await withCluster { _, servers in
            let server = servers[1]
            // The schema as it was before migration 18, with steps of two cases.
            try await server.transaction { connection in
                for statement: PostgresQuery in [
                    "DROP TABLE case_steps",
                    """
                    CREATE TABLE steps (
                        workspace_id text NOT NULL, run_id text NOT NULL, case_ordinal integer NOT NULL, ordinal integer NOT NULL,
                        parent integer, depth integer NOT NULL, name text NOT NULL, status text NOT NULL, duration_ms bigint NOT NULL,
                        attachments text[] NOT NULL DEFAULT '{}', PRIMARY KEY (workspace_id, run_id, case_ordinal, ordinal))
                    """,
                    """
                    INSERT INTO steps VALUES ('ws_a', 'run_1', 0, 1, 0, 1, 'child "quoted"', 'failed', 7, '{att_1,att_2}'),
                                             ('ws_a', 'run_1', 0, 0, NULL, 0, 'parent', 'passed', 12, '{}'),
                                             ('ws_a', 'run_1', 3, 0, NULL, 0, E'tab\\there', 'skipped', 0, '{}')
                    """,
                    "DELETE FROM kaizen_schema_migrations WHERE scope = 'shard' AND version = 18",
                ] {
                    try await connection.query(statement, logger: testLogger)
                }
            }
            #expect(try await Migrator(logger: testLogger).migrate(server, scope: .shard) == [18])
            let stored = try await server.run { connection in
                var rows: [Int: String] = [:]
                for try await (ordinal, text) in try await connection.query(
                    "SELECT case_ordinal, steps FROM case_steps WHERE workspace_id = 'ws_a' AND run_id = 'run_1'", logger: testLogger
                ).decode((Int, String).self) {
                    rows[ordinal] = text
                }
                return rows
            }
            #expect(stored.count == 2)
            #expect(
                StepsText.decode(try #require(stored[0])) == [
                    FlatStep(ordinal: 0, parent: nil, depth: 0, name: "parent", status: .passed, durationMs: 12, attachments: []),
                    FlatStep(ordinal: 1, parent: 0, depth: 1, name: "child \"quoted\"", status: .failed, durationMs: 7, attachments: ["att_1", "att_2"]),
                ])
            #expect(
                StepsText.decode(try #require(stored[3])) == [
                    FlatStep(ordinal: 0, parent: nil, depth: 0, name: "tab\there", status: .skipped, durationMs: 0, attachments: [])
                ])
            let oldTable = try await server.run { connection in
                var found = true
                for try await exists in try await connection.query("SELECT to_regclass('steps') IS NOT NULL", logger: testLogger).decode(Bool.self) {
                    found = exists
                }
                return found
            }
            #expect(!oldTable)
        }
    }

    @Test func everyTenantTableLeadsItsPrimaryKeyWithWorkspaceID() async throws {
        try await withCluster { _, servers in
            let rows = try await servers[1].run { connection in
                try await connection.query(
                    """
                    SELECT tc.table_name, kcu.column_name
                    FROM information_schema.table_constraints tc
                    JOIN information_schema.key_column_usage kcu
                      ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
                    WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'
                      AND kcu.ordinal_position = 1 AND tc.table_name NOT LIKE 'kaizen\\_%'
                    """, logger: testLogger
                ).collect()
            }
            let firstColumns = try rows.map { try $0.decode((String, String).self) }
            #expect(!firstColumns.isEmpty)
            for (table, column) in firstColumns {
                #expect(column == "workspace_id", "table \(table) leads its key with \(column)")
            }
        }
    }

    @Test func logicalShardsSpreadOverBothServers() async throws {
        try await withCluster(shards: 8) { cluster, _ in
            #expect(cluster.shardMap.shardCount == 8)
            #expect(cluster.shardMap.shards(onServer: 0) == [0, 2, 4, 6])
            #expect(cluster.shardMap.shards(onServer: 1) == [1, 3, 5, 7])
            var servers: Set<Int> = []
            for index in 0..<4 {
                let workspace = try await cluster.catalog.createWorkspace(slug: "ws-\(index)", name: "W\(index)")
                servers.insert(cluster.shardMap.serverIndex(forShard: workspace.shardID) ?? -1)
            }
            #expect(servers == [0, 1])
        }
    }

    @Test func shardMapSurvivesARestartWithAnotherShardCount() async throws {
        let urls = try await TestPostgres.shared.freshDatabases()
        let first = try await withServers(urls: urls) { servers in
            try await StorageCluster.open(servers: servers, logicalShards: 4, logger: testLogger).shardMap
        }
        let second = try await withServers(urls: urls) { servers in
            try await StorageCluster.open(servers: servers, logicalShards: 16, logger: testLogger).shardMap
        }
        #expect(first == second)
    }

    @Test func reorderedServerListIsRefused() async throws {
        let urls = try await TestPostgres.shared.freshDatabases()
        _ = try await withServers(urls: urls) { servers in
            try await StorageCluster.open(servers: servers, logicalShards: 4, logger: testLogger)
        }
        await #expect(throws: StorageError.self) {
            _ = try await withServers(urls: urls.reversed()) { servers in
                try await StorageCluster.open(servers: servers, logicalShards: 4, logger: testLogger)
            }
        }
    }

    @Test func duplicateWorkspaceSlugIsAUniqueViolation() async throws {
        try await withCluster { cluster, _ in
            _ = try await cluster.catalog.createWorkspace(slug: "acme", name: "Acme")
            await #expect {
                _ = try await cluster.catalog.createWorkspace(slug: "acme", name: "Other")
            } throws: { error in
                (error as? DomainError)?.isUniqueViolation == true
            }
        }
    }

    @Test func tokensResolveUntilRevokedOrExpired() async throws {
        try await withCluster { cluster, _ in
            let catalog = cluster.catalog
            let ws = try await catalog.createWorkspace(slug: "acme", name: "Acme")
            let (info, secret) = try await catalog.createToken(
                .init(name: "ci", tokenClass: .workspace, workspaceID: ws.id, role: .member, userID: nil, createdBy: nil, expiresAt: nil))
            let identity = try #require(try await catalog.resolve(secretHash: TokenSecret.hash(secret)))
            #expect(identity.tokenID == info.id)
            #expect(identity.grants.map(\.workspaceSlug) == ["acme"])
            #expect(identity.grants.first?.role == .member)
            // The table holds only the hash.
            let stored = try await catalog.server.run { connection in
                try await connection.query("SELECT secret_hash FROM tokens WHERE id = \(info.id)", logger: testLogger)
                    .collect().first?.decode(String.self)
            }
            #expect(stored == TokenSecret.hash(secret))
            #expect(stored != secret)

            _ = try await catalog.revokeToken(id: info.id, workspaceID: ws.id)
            #expect(try await catalog.resolve(secretHash: TokenSecret.hash(secret)) == nil)

            let user = try await catalog.upsertUser(email: "dev@example.com", name: nil)
            try await catalog.setMembership(workspaceID: ws.id, userID: user.id, role: .viewer)
            let (_, expired) = try await catalog.createToken(
                .init(
                    name: "old", tokenClass: .user, workspaceID: ws.id, role: nil, userID: user.id, createdBy: nil,
                    expiresAt: Date(timeIntervalSinceNow: -1)))
            #expect(try await catalog.resolve(secretHash: TokenSecret.hash(expired)) == nil)
        }
    }

    @Test func ownUserTokensGrantEveryMembershipIssuedOnesOnlyTheirWorkspace() async throws {
        try await withCluster { cluster, _ in
            let catalog = cluster.catalog
            let a = try await catalog.createWorkspace(slug: "alpha", name: "A")
            let b = try await catalog.createWorkspace(slug: "beta", name: "B")
            _ = try await catalog.createWorkspace(slug: "gamma", name: "C")
            let user = try await catalog.upsertUser(email: "dev@example.com", name: "Dev")
            try await catalog.setMembership(workspaceID: a.id, userID: user.id, role: .admin)
            try await catalog.setMembership(workspaceID: b.id, userID: user.id, role: .viewer)
            let (_, secret) = try await catalog.createToken(
                .init(
                    name: "laptop", tokenClass: .user, workspaceID: nil, role: nil, userID: user.id, createdBy: nil,
                    expiresAt: Date(timeIntervalSinceNow: 3600)))
            let identity = try #require(try await catalog.resolve(secretHash: TokenSecret.hash(secret)))
            #expect(identity.tokenClass == .user)
            #expect(identity.grants.map(\.workspaceSlug) == ["alpha", "beta"])
            #expect(identity.grant(workspaceSlug: "beta")?.role == .viewer)
            #expect(identity.grant(workspaceSlug: "gamma") == nil)

            // One issued by a workspace is confined to it and capped at its stored role.
            let (_, issued) = try await catalog.createToken(
                .init(
                    name: "from beta", tokenClass: .user, workspaceID: a.id, role: .member, userID: user.id, createdBy: nil,
                    expiresAt: Date(timeIntervalSinceNow: 3600)))
            let confined = try #require(try await catalog.resolve(secretHash: TokenSecret.hash(issued)))
            #expect(confined.grants.map(\.workspaceSlug) == ["alpha"])
            #expect(confined.grant(workspaceSlug: "alpha")?.role == .member)
        }
    }
}

import Foundation
