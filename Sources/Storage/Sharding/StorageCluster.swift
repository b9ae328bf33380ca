import Domains
import Logging
import PostgresNIO
import Tenancy

/// The catalog plus every physical server, and the map of logical shards onto them.
public final class StorageCluster: TenantStorage {
    public let servers: [PhysicalServer]
    public let catalog: CatalogStore
    public let shardMap: ShardMap
    let logger: Logger

    /// One pool per URL, in `KAIZEN_DATABASE_URLS` order. Start `runPools` on them before `open`.
    public static func makeServers(
        urls: [DatabaseURL], maxConnectionsPerServer: Int = 40, acquireTimeout: Duration = .seconds(5), logger: Logger
    ) throws -> [PhysicalServer] {
        guard !urls.isEmpty else { throw StorageError.configuration("no database servers configured") }
        return urls.enumerated().map {
            PhysicalServer(
                index: $0.offset, url: $0.element, maxConnections: maxConnectionsPerServer, acquireTimeout: acquireTimeout,
                logger: logger)
        }
    }

    /// Migrates every server, checks each server's identity, and loads (or creates) the shard map.
    public static func open(servers: [PhysicalServer], logicalShards: Int, logger: Logger) async throws
        -> StorageCluster
    {
        guard logicalShards >= servers.count else {
            throw StorageError.configuration(
                "KAIZEN_SHARDS (\(logicalShards)) must be at least the number of database servers (\(servers.count))")
        }
        let migrator = Migrator(logger: logger)
        try await migrator.migrate(servers[0], scope: .catalog)
        for server in servers {
            try await migrator.migrate(server, scope: .shard)
            try await Self.checkIdentity(server, logger: logger)
        }
        let catalog = CatalogStore(server: servers[0], logger: logger)
        let map = try await catalog.ensureShardMap(count: logicalShards, servers: servers.count)
        if let bad = map.placements.values.first(where: { $0 >= servers.count }) {
            throw StorageError.configuration(
                "the shard map places shards on server \(bad) but only \(servers.count) database URL(s) are configured")
        }
        if map.shardCount != logicalShards {
            logger.notice(
                "keeping the existing shard map",
                metadata: ["stored": "\(map.shardCount)", "configured": "\(logicalShards)"])
        }
        return StorageCluster(servers: servers, catalog: catalog, shardMap: map, logger: logger)
    }

    init(servers: [PhysicalServer], catalog: CatalogStore, shardMap: ShardMap, logger: Logger) {
        self.servers = servers
        self.catalog = catalog
        self.shardMap = shardMap
        self.logger = logger
    }

    /// Runs every pool until the task is cancelled.
    public static func runPools(_ servers: [PhysicalServer]) async {
        await withDiscardingTaskGroup { group in
            for server in servers { group.addTask { await server.client.run() } }
        }
    }

    /// How `closePools` ended.
    public enum PoolClosing: Sendable, Equatable {
        case closed
        /// COPYs were still running at the deadline (or the wait was cancelled): the pools stay open.
        case leftOpen(copies: Int)
        /// The pools were told to close but did not finish within 5 s (a server that stopped answering).
        case slowToClose
    }

    /// Closes the pools once no COPY runs on their connections, waiting at most `limit` for those still running.
    /// Closing a pool force-closes the connections it lent — a statement cut so rolls back — but PostgresNIO traps
    /// on a connection closed in the middle of a COPY, so when COPYs are still running at the deadline (or the
    /// wait is cancelled) the pools are left open: the process is ending, and an open connection costs less than
    /// a crash. (A COPY whose task was cancelled ends at its next write.) `waiting` hears, once, how many COPYs the
    /// close waits for.
    public static func closePools(
        _ servers: [PhysicalServer], running pools: Task<Void, Never>, within limit: Duration,
        waiting: @Sendable (Int) -> Void = { _ in }
    ) async -> PoolClosing {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var told = false
        while true {
            let running = servers.reduce(0) { $0 + $1.copiesRunning }
            if running == 0 { break }
            if !told {
                waiting(running)
                told = true
            }
            // A short poll: this runs once, at shutdown, and nothing signals "the last COPY ended".
            guard clock.now < deadline, (try? await Task.sleep(for: .milliseconds(10))) != nil else {
                return .leftOpen(copies: running)
            }
        }
        pools.cancel()
        // A pool whose server stopped answering may not wind down promptly; do not wait forever.
        return (try? await awaitAtMost(.seconds(5)) { await pools.value }) != nil ? .closed : .slowToClose
    }

    public func server(forShard shard: Int) throws -> PhysicalServer {
        guard let index = shardMap.serverIndex(forShard: shard), index < servers.count else {
            throw StorageError.configuration("logical shard \(shard) has no server")
        }
        return servers[index]
    }

    /// A workspace's repositories on the server holding its shard.
    public func repositories(workspaceID: String, shardID: Int) throws -> TenantRepositories {
        let server = try server(forShard: shardID)
        return TenantRepositories(
            projects: PostgresProjectRepository(server: server, workspaceID: workspaceID, logger: logger),
            runs: PostgresRunRepository(server: server, workspaceID: workspaceID, logger: logger),
            uploads: PostgresUploadRepository(server: server, workspaceID: workspaceID, logger: logger),
            inventory: PostgresInventoryRepository(server: server, workspaceID: workspaceID, logger: logger),
            defects: PostgresDefectRepository(server: server, workspaceID: workspaceID, logger: logger),
            intelligence: PostgresIntelligenceRepository(server: server, workspaceID: workspaceID, logger: logger),
            analytics: PostgresAnalyticsRepository(server: server, workspaceID: workspaceID, logger: logger),
            events: PostgresEventRepository(server: server, workspaceID: workspaceID, logger: logger),
            jobs: PostgresJobRepository(queue: JobQueue(server: server, logger: logger), workspaceID: workspaceID),
            ci: PostgresCIRepository(server: server, workspaceID: workspaceID, logger: logger),
            webhooks: PostgresWebhookRepository(server: server, workspaceID: workspaceID, logger: logger))
    }

    /// Records (first start) or verifies (later starts) which position this server holds.
    static func checkIdentity(_ server: PhysicalServer, logger: Logger) async throws {
        let stored = try await server.run { connection -> Int in
            let rows = try await connection.query(
                """
                INSERT INTO kaizen_node (singleton, server_index) VALUES (true, \(server.index))
                ON CONFLICT (singleton) DO UPDATE SET server_index = kaizen_node.server_index
                RETURNING server_index
                """, logger: logger)
            for try await index in rows.decode(Int.self) { return index }
            return server.index
        }
        guard stored == server.index else {
            throw StorageError.configuration(
                "database \(server.url) was server \(stored) of KAIZEN_DATABASE_URLS but is now listed at position \(server.index); "
                    + "keep the list in its original order")
        }
    }

    public func health() async -> StorageHealth {
        let failures = await withTaskGroup(of: (Int, String?).self) { group in
            for server in servers { group.addTask { (server.index, await server.ping()) } }
            var result: [Int: String] = [:]
            for await (index, problem) in group { if let problem { result[index] = problem } }
            return result
        }
        return StorageHealth(
            servers: servers.map {
                StorageHealth.Server(index: $0.index, shards: shardMap.shards(onServer: $0.index), problem: failures[$0.index])
            })
    }
}

