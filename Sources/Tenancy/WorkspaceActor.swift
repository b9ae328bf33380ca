import Domains
import Logging
import Storage

/// The single owner of one workspace's in-process state: its cache of projects, its write
/// sequencing and (with ingest) its quotas. Created on first use by `WorkspaceRegistry`,
/// dropped when idle; everything it holds can be rebuilt from the shard.
public actor WorkspaceActor {
    public let workspaceID: String
    public let shardID: Int
    let store: TenantStore
    let logger: Logger

    /// One FIFO lane per key: "workspace" for workspace-wide writes, "project:<id>" for finalizes.
    private var lanes: [String: SerialLane] = [:]
    /// Projects by slug; nil until first loaded from the shard.
    private var projectsBySlug: [String: Project]?
    /// Last write sequence number used; nil until loaded.
    private var writeSeq: Int64?
    /// Per project: the last finalize sequence number used.
    var runSeqs: [String: Int64] = [:]
    /// Per project and branch: the latest run and its case statuses, the next finalize's baseline.
    var baselines: [BaselineKey: Baseline] = [:]
    /// Per project: the finalizes of the last minute (the quota's rolling window).
    var finalizeQuota: [String: SlidingWindowLog] = [:]
    /// Per project: inventory id by case key. Ids never change, so a cached id is always right; the
    /// next finalize of the project then only sends the inventory its new cases.
    var caseIDs: [String: [String: String]] = [:]
    /// Recently read runs by id. A stored run never changes, so the cache needs no invalidation.
    var runs: [String: RunRecord] = [:]
    var runOrder: [String] = []
    /// Upload sessions by id (also persisted, so a restart loses nothing).
    var uploadSessions: [String: UploadSession] = [:]

    /// Instrumentation for tests and metrics: writes currently inside the lane (never above 1).
    public private(set) var writesInLane = 0
    public private(set) var maxWritesInLane = 0

    /// Monotonic nanoseconds, for the quotas; injected so tests need not wait for real time to pass.
    let clock: @Sendable () -> UInt64

    public init(
        workspaceID: String, shardID: Int, store: TenantStore, logger: Logger,
        clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) {
        self.workspaceID = workspaceID
        self.shardID = shardID
        self.store = store
        self.logger = logger
        self.clock = clock
    }

    // MARK: sequencing

    /// Runs `body` alone among this workspace's sequenced writes of `key`, in arrival order.
    public func sequenced<T: Sendable>(
        key: String = "workspace", _ body: @Sendable (isolated WorkspaceActor) async throws -> T
    ) async throws -> T {
        if !lanes[key, default: SerialLane()].tryEnter() {
            await withCheckedContinuation { lanes[key, default: SerialLane()].enqueue($0) }
        }
        let counted = key == "workspace"
        if counted {
            writesInLane += 1
            maxWritesInLane = max(maxWritesInLane, writesInLane)
        }
        defer {
            if counted { writesInLane -= 1 }
            lanes[key]?.leave()
            if let lane = lanes[key], !lane.busy { lanes[key] = nil }
        }
        return try await body(self)
    }

    /// The next write sequence number. Only meaningful inside `sequenced`: it is committed by the caller's
    /// transaction and advanced here only after that succeeds (`commitSequence`).
    func peekNextSequence() async throws -> Int64 {
        if let writeSeq { return writeSeq + 1 }
        let stored = try await store.writeSequence()
        writeSeq = stored
        return stored + 1
    }

    func commitSequence(_ seq: Int64) {
        writeSeq = seq
    }

    public var lastWriteSequence: Int64? { writeSeq }

    // MARK: projects

    public func projects() async throws -> [Project] {
        try await loadedProjects().values.sorted { $0.slug < $1.slug }
    }

    public func project(slug: String) async throws -> Project? {
        try await loadedProjects()[slug]
    }

    private func loadedProjects() async throws -> [String: Project] {
        if let projectsBySlug { return projectsBySlug }
        let loaded = try await store.projects()
        // Another call may have filled the cache while we awaited: keep the newer state.
        if let projectsBySlug { return projectsBySlug }
        let map = Dictionary(loaded.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        projectsBySlug = map
        return map
    }

    /// Creates a project; 409 when the slug is taken in this workspace.
    public func createProject(slug: String, name: String, accessMode: AccessMode, defaultBranch: String)
        async throws -> Project
    {
        try await sequenced { actor in
            if try await actor.project(slug: slug) != nil {
                throw APIError.conflict(
                    "a project with slug '\(slug)' already exists in this workspace",
                    details: ["pointer": "/slug", "slug": .string(slug)])
            }
            let seq = try await actor.peekNextSequence()
            let project: Project
            do {
                project = try await actor.store.insertProject(
                    slug: slug, name: name, accessMode: accessMode, defaultBranch: defaultBranch, seq: seq)
            } catch StorageError.uniqueViolation {
                // Another node created it: our cache is stale.
                actor.projectsBySlug = nil
                throw APIError.conflict(
                    "a project with slug '\(slug)' already exists in this workspace",
                    details: ["pointer": "/slug", "slug": .string(slug)])
            }
            actor.commitSequence(seq)
            actor.projectsBySlug?[slug] = project
            return project
        }
    }
}
