import Domains

/// One workspace's repositories, all bound to the workspace and to the server holding its shard.
public struct TenantRepositories: Sendable {
    public let projects: any ProjectRepository
    public let runs: any RunRepository
    public let uploads: any UploadRepository
    public let inventory: any InventoryRepository
    public let defects: any DefectRepository
    public let intelligence: any IntelligenceRepository
    public let analytics: any AnalyticsRepository
    public let events: any EventRepository
    public let jobs: any JobRepository
    public let ci: any CIRepository
    public let webhooks: any WebhookRepository

    public init(
        projects: any ProjectRepository, runs: any RunRepository, uploads: any UploadRepository,
        inventory: any InventoryRepository, defects: any DefectRepository, intelligence: any IntelligenceRepository,
        analytics: any AnalyticsRepository, events: any EventRepository, jobs: any JobRepository, ci: any CIRepository,
        webhooks: any WebhookRepository
    ) {
        self.ci = ci
        self.webhooks = webhooks
        self.projects = projects
        self.runs = runs
        self.uploads = uploads
        self.inventory = inventory
        self.defects = defects
        self.intelligence = intelligence
        self.analytics = analytics
        self.events = events
        self.jobs = jobs
    }
}

/// Where tenants' data lives: hands out a workspace's repositories (the sharded storage layer implements it).
public protocol TenantStorage: Sendable {
    /// Throws when the shard has no server (a configuration error).
    func repositories(workspaceID: String, shardID: Int) throws -> TenantRepositories
    /// Whether each database server answers, for `/healthz`.
    func health() async -> StorageHealth
}

/// Which database servers answer, and the logical shards each holds.
public struct StorageHealth: Sendable {
    public struct Server: Sendable {
        public let index: Int
        public let shards: [Int]
        /// Nil when it answers; otherwise what went wrong (for the operator's log only: it may name the address).
        public let problem: String?

        public init(index: Int, shards: [Int], problem: String?) {
            self.index = index
            self.shards = shards
            self.problem = problem
        }
    }

    public let servers: [Server]

    public init(servers: [Server]) { self.servers = servers }
}
