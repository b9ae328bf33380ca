import Domains
import Foundation
import Logging
import Storage
import Synchronization
import Tenancy

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
    /// COPYs still running (a roll-up staging its rows) get up to 15 s first: PostgresNIO answers a pool closed
    /// under one with a trap.
    public func close() async {
        let logger = self.logger
        let closing = await StorageCluster.closePools(cluster.servers, running: poolTask, within: .seconds(15)) {
            logger.info("waiting for COPYs to finish before closing the pools", metadata: ["copies": "\($0)"])
        }
        switch closing {
        case .closed: break
        case .leftOpen(let copies):
            logger.warning("COPYs still running; exiting without closing the pools", metadata: ["copies": "\(copies)"])
        case .slowToClose:
            logger.warning("database pools did not close within 5 s; exiting without them")
        }
        if startedEmbedded { await embedded?.stop() }
    }
}

/// First start: a `default` workspace, an admin workspace token written to `first-token.txt` (0600), and an
/// owner set-up link (the first person to open it becomes the owner and an operator) in
/// `first-owner-link.txt` (0600).
public enum FirstRun {
    public struct Result: Sendable {
        public let tokenPath: String
        public let createdNow: Bool
        public var ownerLinkPath: String?
    }

    public static func bootstrap(_ cluster: StorageCluster, config: KaizenConfiguration, logger: Logger) async throws
        -> Result?
    {
        let path = config.firstTokenPath
        let catalog = cluster.catalog
        let linkPath = config.ownerLinkPath
        guard try await catalog.allWorkspaces().isEmpty else {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return Result(
                tokenPath: path, createdNow: false,
                ownerLinkPath: FileManager.default.fileExists(atPath: linkPath) ? linkPath : nil)
        }
        let workspace = try await catalog.createWorkspace(slug: "default", name: "Default")
        let (_, secret) = try await catalog.createToken(
            .init(
                name: "first admin token", tokenClass: .workspace, workspaceID: workspace.id, role: .admin, userID: nil,
                createdBy: "kaizen-first-start", expiresAt: nil))
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        try writePrivate(secret + "\n", to: path)
        let accounts = AccountService(repository: catalog, passwords: BcryptPasswordHasher(cost: config.bcryptCost))
        let linkSecret = try await accounts.ownerSetupLink(workspaceID: workspace.id)
        let base = config.publicURL ?? "http://\(config.host):\(config.port)"
        try writePrivate(
            "\(base)/invitations/accept#\(linkSecret)\n"
                + "or: POST /v1/auth/invitations/accept {\"invitation\":\"\(linkSecret)\",\"email\":…,\"password\":…}\n",
            to: linkPath)
        logger.info(
            "created workspace 'default', its first admin token and an owner set-up link",
            metadata: ["token": "\(path)", "ownerLink": "\(linkPath)"])
        return Result(tokenPath: path, createdNow: true, ownerLinkPath: linkPath)
    }

    /// Writes a file only its owner may read (createFile keeps an existing file's mode, hence the chmod).
    static func writePrivate(_ text: String, to path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}
