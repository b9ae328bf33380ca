import Domains
import Logging

/// The only door to one workspace's data. It owns the workspace's in-process state (its caches, its
/// write sequencing, its quotas) and exposes the use cases, named for what a user does.
///
/// Two kinds of operation, marked in each file:
/// - **sequenced writes** (project creation, finalize) run inside a `SerialLane`, one at a time per
///   key, because they read and advance in-process state (sequence numbers, baselines, quotas);
/// - **reads and self-contained writes** are `nonisolated`: they take the repositories and run
///   outside the actor, so a slow read never waits behind a write, nor a write behind reads. Each
///   such write is one transaction that needs no in-process state.
///
/// Created on first use by `WorkspaceRegistry`, dropped when idle; everything it holds can be rebuilt
/// from the shard, and a cache miss always reloads (another node may have written).
public actor WorkspaceActor {
    public nonisolated let workspaceID: String
    public nonisolated let shardID: Int
    /// The workspace's storage; `nonisolated` so reads use it without entering the actor.
    nonisolated let repos: TenantRepositories
    nonisolated let blobs: any BlobStore
    nonisolated let logger: Logger
    /// This node's live streams: use cases publish ingest progress to them.
    nonisolated let live: LiveEventHub?
    /// How far the projects' roll-ups may fall behind before a finalize waits for them.
    nonisolated let rollUpBackpressure: RollUpBackpressure

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
    /// Per project: inventory id (the ULID of `case_…`) by case key digest. Ids never change, so a cached
    /// id is always right; the next finalize of the project then only sends the inventory its new cases.
    var caseIDs: [String: CaseIDMap] = [:]
    /// When a finalize last used the ingest caches above (`clock` nanoseconds).
    var ingestCachesUsedNanos: UInt64 = 0
    /// Recently read closed runs by id. A closed run never changes, so the cache needs no invalidation.
    var runs: [String: RunRecord] = [:]
    var runOrder: [String] = []
    /// Per open sharded run, what closing it needs of the shards this node stored (a hint: the close reads
    /// the run back when it lacks any).
    var shardParts: [String: [Int: ShardPart]] = [:]
    /// Upload sessions by id (also persisted, so a restart loses nothing).
    var uploadSessions: [String: UploadSession] = [:]

    /// Instrumentation for tests and metrics: writes currently inside the lane (never above 1).
    public private(set) var writesInLane = 0
    public private(set) var maxWritesInLane = 0

    /// Monotonic nanoseconds, for the quotas; injected so tests need not wait for real time to pass.
    nonisolated let clock: @Sendable () -> UInt64

    public init(
        workspaceID: String, shardID: Int, repositories: TenantRepositories, blobs: any BlobStore, logger: Logger,
        live: LiveEventHub? = nil, rollUpBackpressure: RollUpBackpressure = .off,
        clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) {
        self.live = live
        self.rollUpBackpressure = rollUpBackpressure
        self.workspaceID = workspaceID
        self.shardID = shardID
        self.repos = repositories
        self.blobs = blobs
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
        let stored = try await repos.projects.writeSequence()
        writeSeq = stored
        return stored + 1
    }

    func commitSequence(_ seq: Int64) {
        writeSeq = seq
    }

    public var lastWriteSequence: Int64? { writeSeq }

    // MARK: projects (cached; creation is a sequenced write)

    /// Every project, read from the shard (another node may have created some) and cached for the
    /// lookups by slug and id that ingest and reads make.
    public func projects() async throws -> [Project] {
        projectsBySlug = nil
        return try await loadedProjects().values.sorted { $0.slug < $1.slug }
    }

    /// A cache miss reloads from the shard, so a project another node created is found at once.
    public func project(slug: String) async throws -> Project? {
        if let cached = projectsBySlug?[slug] { return cached }
        projectsBySlug = nil
        return try await loadedProjects()[slug]
    }

    /// A project of this workspace by id; a miss reloads, as for slugs.
    public func project(id: String) async throws -> Project? {
        if let cached = projectsBySlug?.values.first(where: { $0.id == id }) { return cached }
        projectsBySlug = nil
        return try await loadedProjects().values.first { $0.id == id }
    }

    private func loadedProjects() async throws -> [String: Project] {
        if let projectsBySlug { return projectsBySlug }
        let loaded = try await repos.projects.projects()
        // Another call may have filled the cache while we awaited: keep the newer state.
        if let projectsBySlug { return projectsBySlug }
        let map = Dictionary(loaded.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        projectsBySlug = map
        return map
    }

    /// The unique constraint on (workspace, created_seq) of projects.
    static let projectSequenceConstraint = "projects_seq_key"

    /// Creates a project; a conflict when the slug is taken in this workspace. Sequenced: it advances the
    /// workspace's write sequence, which a unique constraint keeps unique across nodes.
    public func createProject(
        slug: String, name: String, accessMode: AccessMode, defaultBranch: String, by auditActor: AuditActor? = nil
    ) async throws -> Project
    {
        try await sequenced { actor in
            if try await actor.loadedProjects()[slug] != nil {
                throw DomainError.conflict(
                    "a project with slug '\(slug)' already exists in this workspace",
                    details: ["pointer": "/slug", "slug": .string(slug)])
            }
            var attempt = 0
            while true {
                attempt += 1
                let seq = try await actor.peekNextSequence()
                let project: Project
                do {
                    project = try await actor.repos.projects.insertProject(
                        slug: slug, name: name, accessMode: accessMode, defaultBranch: defaultBranch, seq: seq, by: auditActor)
                } catch let error as DomainError where error.isUniqueViolation {
                    // Another node wrote first: our caches are stale. It took this sequence number (go again,
                    // fresh), or this slug.
                    actor.projectsBySlug = nil
                    actor.writeSeq = nil
                    if error.details["constraint"] == .string(Self.projectSequenceConstraint), attempt < 16 { continue }
                    throw DomainError.conflict(
                        "a project with slug '\(slug)' already exists in this workspace",
                        details: ["pointer": "/slug", "slug": .string(slug)])
                }
                actor.commitSequence(seq)
                actor.projectsBySlug?[slug] = project
                return project
            }
        }
    }
}
