import Domains
import Foundation
import Logging
import Storage
import Synchronization

/// Opens the storage cluster the configuration names, provisioning the embedded PostgreSQL when
/// no database URLs are configured. Shared by `kaizen serve` and the operator subcommands.
public final class StorageHandle: Sendable {
    public let cluster: StorageCluster
    let poolTask: Task<Void, Never>
    let embedded: EmbeddedPostgres?
    let startedEmbedded: Bool
    let logger: Logger

    init(
        cluster: StorageCluster, poolTask: Task<Void, Never>, embedded: EmbeddedPostgres?, startedEmbedded: Bool,
        logger: Logger
    ) {
        self.logger = logger
        self.cluster = cluster
        self.poolTask = poolTask
        self.embedded = embedded
        self.startedEmbedded = startedEmbedded
    }

    public static func open(_ config: KaizenConfiguration, logger: Logger) async throws -> StorageHandle {
        var urls = config.databaseURLs ?? []
        var embedded: EmbeddedPostgres?
        var startedEmbedded = false
        if urls.isEmpty {
            let postgres = EmbeddedPostgres(directory: config.embeddedPostgresDirectory, logger: logger)
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
            try EmbeddedPostgres.restrictParent(config.dataDirectory)
            let started = try await postgres.start()
            urls = [started.url]
            embedded = postgres
            startedEmbedded = started.startedByUs
        }
        let servers = try StorageCluster.makeServers(
            urls: urls, maxConnectionsPerServer: config.maxConnectionsPerServer,
            acquireTimeout: .milliseconds(Int64(config.dbAcquireTimeoutSeconds * 1000)), logger: logger)
        let poolTask = Task { await StorageCluster.runPools(servers) }
        // Let the pools' run loops start before the first lease (PostgresNIO warns otherwise).
        try? await Task.sleep(for: .milliseconds(20))
        do {
            let cluster = try await StorageCluster.open(servers: servers, logicalShards: config.logicalShards, logger: logger)
            return StorageHandle(
                cluster: cluster, poolTask: poolTask, embedded: embedded, startedEmbedded: startedEmbedded, logger: logger)
        } catch {
            poolTask.cancel()
            await poolTask.value
            if startedEmbedded { await embedded?.stop() }
            throw error
        }
    }

    /// Closes the pools and stops the embedded PostgreSQL if this process started it.
    public func close() async {
        poolTask.cancel()
        // A pool whose server stopped answering may not wind down promptly; do not wait forever.
        if !(await Self.waitAtMost(seconds: 5, for: poolTask)) {
            logger.warning("database pools did not close within 5 s; exiting without them")
        }
        if startedEmbedded { await embedded?.stop() }
    }

    /// True when `task` ended within `seconds`; the wait ends at the deadline either way.
    static func waitAtMost(seconds: Double, for task: Task<Void, Never>) async -> Bool {
        (try? await awaitAtMost(.seconds(seconds)) { await task.value }) != nil
    }
}

/// First start: a `default` workspace and an admin workspace token written to `first-token.txt` (0600).
public enum FirstRun {
    public struct Result: Sendable {
        public let tokenPath: String
        public let createdNow: Bool
    }

    public static func bootstrap(_ cluster: StorageCluster, config: KaizenConfiguration, logger: Logger) async throws
        -> Result?
    {
        let path = config.firstTokenPath
        let catalog = cluster.catalog
        guard try await catalog.allWorkspaces().isEmpty else {
            return FileManager.default.fileExists(atPath: path) ? Result(tokenPath: path, createdNow: false) : nil
        }
        let workspace = try await catalog.createWorkspace(slug: "default", name: "Default")
        let (_, secret) = try await catalog.createToken(
            .init(
                name: "first admin token", tokenClass: .workspace, workspaceID: workspace.id, role: .admin, userID: nil,
                createdBy: "kaizen-first-start", expiresAt: nil))
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        // createFile keeps an existing file's mode: make sure it is private.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        logger.info("created workspace 'default' and its first admin token", metadata: ["file": "\(path)"])
        return Result(tokenPath: path, createdNow: true)
    }
}
