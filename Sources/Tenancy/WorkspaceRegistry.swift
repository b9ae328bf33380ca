import Domains
import Logging
import Synchronization

/// Finds or creates the actor of a workspace, and drops idle ones.
///
/// The map is split into 64 independently locked stripes keyed by workspace ID, so requests of
/// different workspaces rarely touch the same lock and never wait on one another's work: a stripe
/// lock is held only for a dictionary lookup, never across an `await`.
public final class WorkspaceRegistry: Sendable {
    struct Entry {
        let actor: WorkspaceActor
        var inFlight: Int
        var lastUsedNanos: UInt64
    }

    final class Stripe: Sendable {
        let entries = Mutex<[String: Entry]>([:])
    }

    let stripes: [Stripe]
    let storage: any TenantStorage
    let blobs: any BlobStore
    let idleNanos: UInt64
    let logger: Logger
    /// This node's live streams, handed to every actor.
    public let live: LiveEventHub
    /// Handed to every actor (its quotas' clock).
    let clock: @Sendable () -> UInt64

    /// Ingest caches unused this long are dropped from live actors (see `WorkspaceActor.coolDown`).
    let cacheIdleNanos: UInt64
    let rollUpBackpressure: RollUpBackpressure

    public init(
        storage: any TenantStorage, blobs: any BlobStore, idleSeconds: Double, cacheIdleSeconds: Double = 30, logger: Logger,
        stripeCount: Int = 64, live: LiveEventHub = LiveEventHub(), rollUpBackpressure: RollUpBackpressure = .off,
        clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) {
        self.live = live
        self.rollUpBackpressure = rollUpBackpressure
        self.clock = clock
        self.cacheIdleNanos = Self.nanoseconds(cacheIdleSeconds)
        self.storage = storage
        self.blobs = blobs
        self.idleNanos = Self.nanoseconds(idleSeconds)
        self.logger = logger
        self.stripes = (0..<max(1, stripeCount)).map { _ in Stripe() }
    }

    /// A period in nanoseconds, clamped to 0…10⁹ s so that no configured value (however large, or not a
    /// number) traps in the conversion.
    static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(min(max(0, seconds), 1e9) * 1e9)
    }

    private func stripe(for workspaceID: String) -> Stripe { stripes.stripe(for: workspaceID) }

    /// Runs `body` with the workspace's actor. The actor cannot be evicted while `body` runs.
    public func withWorkspace<T: Sendable>(
        _ grant: WorkspaceGrant, _ body: (WorkspaceActor) async throws -> T
    ) async throws -> T {
        try await withWorkspace(id: grant.workspaceID, shardID: grant.shardID, body)
    }

    public func withWorkspace<T: Sendable>(
        id workspaceID: String, shardID: Int, _ body: (WorkspaceActor) async throws -> T
    ) async throws -> T {
        let actor = try acquire(workspaceID: workspaceID, shardID: shardID)
        defer { release(workspaceID: workspaceID) }
        return try await body(actor)
    }

    func acquire(workspaceID: String, shardID: Int) throws -> WorkspaceActor {
        let now = ContinuousClock.now.nanosecondsSinceReference
        let stripe = stripe(for: workspaceID)
        func take(_ entries: inout [String: Entry]) -> WorkspaceActor? {
            guard var entry = entries[workspaceID] else { return nil }
            entry.inFlight += 1
            entry.lastUsedNanos = now
            entries[workspaceID] = entry
            return entry.actor
        }
        if let actor = stripe.entries.withLock({ take(&$0) }) { return actor }
        // A new actor: its repositories are built outside the lock (cheap, no I/O; they fail only for a
        // shard with no server), then whoever comes first keeps theirs.
        let repositories = try storage.repositories(workspaceID: workspaceID, shardID: shardID)
        return stripe.entries.withLock { entries in
            if let actor = take(&entries) { return actor }
            let actor = WorkspaceActor(
                workspaceID: workspaceID, shardID: shardID, repositories: repositories, blobs: blobs, logger: logger,
                live: live, rollUpBackpressure: rollUpBackpressure, clock: clock)
            entries[workspaceID] = Entry(actor: actor, inFlight: 1, lastUsedNanos: now)
            return actor
        }
    }

    func release(workspaceID: String) {
        let now = ContinuousClock.now.nanosecondsSinceReference
        stripe(for: workspaceID).entries.withLock { entries in
            entries[workspaceID]?.inFlight -= 1
            entries[workspaceID]?.lastUsedNanos = now
        }
    }

    /// Drops actors with no request in flight and unused for the idle period. Returns how many.
    @discardableResult
    public func evictIdle(olderThanNanos: UInt64? = nil) -> Int {
        let now = ContinuousClock.now.nanosecondsSinceReference
        let limit = olderThanNanos ?? idleNanos
        var evicted = 0
        for stripe in stripes {
            stripe.entries.withLock { entries in
                for (id, entry) in entries
                where entry.inFlight == 0 && entry.lastUsedNanos <= now && now - entry.lastUsedNanos >= limit
                {
                    entries[id] = nil
                    evicted += 1
                }
            }
        }
        return evicted
    }

    /// Actors currently alive.
    public var count: Int {
        stripes.reduce(0) { total, stripe in total + stripe.entries.withLock { $0.count } }
    }

    /// The live actor of a workspace, if any (for tests and diagnostics; does not create one).
    public func existingActor(workspaceID: String) -> WorkspaceActor? {
        stripe(for: workspaceID).entries.withLock { $0[workspaceID]?.actor }
    }

    /// Evicts idle actors every quarter of the idle period (and drops idle ingest caches every half of
    /// theirs) until cancelled.
    /// `onEvicted` hears of each eviction (the memory trimmer: evicted caches are memory to give back).
    public func runEvictor(onEvicted: @Sendable (Int) -> Void = { _ in }) async {
        let period = Duration.nanoseconds(Int64(max(min(idleNanos / 4, cacheIdleNanos / 2), 1_000_000_000)))
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            let evicted = evictIdle()
            let cooled = await coolDownIngestCaches()
            if evicted > 0 || cooled > 0 {
                logger.debug("evicted idle workspace actors", metadata: ["count": "\(evicted)", "cachesDropped": "\(cooled)"])
                onEvicted(evicted + cooled)
            }
        }
    }

    /// Drops the ingest caches of live actors that no finalize used for the cache idle period. Returns how many.
    @discardableResult
    public func coolDownIngestCaches() async -> Int {
        var live: [WorkspaceActor] = []
        for stripe in stripes { stripe.entries.withLock { live += $0.values.map(\.actor) } }
        var cooled = 0
        for actor in live where await actor.coolDown(idleNanos: cacheIdleNanos) { cooled += 1 }
        return cooled
    }
}

extension ContinuousClock.Instant {
    /// Nanoseconds since an arbitrary fixed point; only differences are meaningful.
    var nanosecondsSinceReference: UInt64 {
        let components = (self - ContinuousClock.Instant.reference).components
        return UInt64(max(0, components.seconds)) &* 1_000_000_000 &+ UInt64(max(0, components.attoseconds / 1_000_000_000))
    }

    static let reference = ContinuousClock.now
}

extension WorkspaceRegistry {
    /// Whether attachment bytes come to Kaizen's upload endpoint (else clients PUT them to the store).
    public var receivesUploads: Bool { blobs.receivesUploads }

    /// Whether each database server answers, for `/healthz`.
    public func storageHealth() async -> StorageHealth { await storage.health() }
}
