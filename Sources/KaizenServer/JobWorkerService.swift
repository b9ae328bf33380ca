import Domains
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import Tenancy

/// Runs the post-ingest jobs of every physical server: per server, a scheduler that claims jobs with
/// `SKIP LOCKED` (so several Kaizen nodes work the same queues side by side) and runs them on
/// `lanes` concurrent lanes. A project's roll-ups go one batch at a time, in finalize order; different
/// projects' roll-ups run in parallel, so one project's big run does not hold up the others'.
///
/// A lane hands over every roll-up of its project the scheduler holds (up to `batchLimit`) as one
/// batch: the roll-up writes each case once per batch, so the cost per run falls as a backlog builds
/// and the queue cannot grow without bound while pushes keep coming.
///
/// Roll-ups do not wait for finalizes to quiet down: under a sustained push that wait never ends and
/// the backlog grows without bound. They share the machine with finalizes instead, and keep pace.
///
/// Claims are leases: a heartbeat renews the leases of the jobs held (claimed, running or waiting for
/// their lane) every third of the lease, so a job is taken back by another node (or this one,
/// restarted) within `lease` of its worker dying — never while a live worker is still on it.
struct JobWorkerService: Service {
    let cluster: StorageCluster
    /// Roll-ups go through the workspace, like every other use of a tenant's data.
    let registry: WorkspaceRegistry
    /// Shard of each workspace met so far (a workspace never changes shard).
    let shards = ShardsSeen()
    /// Told of every job done, so that the memory trimmer knows work happened.
    let activity: IngestActivity
    let logger: Logger
    var lease: Duration = .seconds(15)
    /// Jobs running at once per database server (each on its own project).
    var lanes: Int = 2
    /// Jobs held per server at most: claimed ahead so a lane never waits for the queue.
    var backlog: Int = 64
    /// Of one project, at most this many are claimed ahead (the rest stay for other nodes and projects).
    var perProjectAhead: Int = 16
    /// Of one project, at most this many roll-ups fold in one transaction.
    var batchLimit: Int = 16
    var idleDelay: Duration = .milliseconds(250)
    /// How soon a roll-up that waits for an earlier run of its project is tried again (no attempt spent).
    var waitDelay: Duration = .milliseconds(500)
    /// Names this process's leases in the queue.
    let workerID = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8))"

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for server in cluster.servers {
                    group.addTask { await work(JobQueue(server: server, logger: logger)) }
                }
            }
        }
    }

    enum LaneEvent: Sendable {
        case finished(String)
        case tick
        case heartbeatStopped
    }

    /// The scheduler of one server's queue.
    func work(_ queue: JobQueue) async {
        let held = HeldJobs([])
        await withTaskGroup(of: LaneEvent.self) { group in
            group.addTask {
                await heartbeat(held, on: queue)
                return .heartbeatStopped
            }
            var pending: [String: [JobRecord]] = [:]
            var busy: Set<String> = []
            var ticking = false
            var due = true
            while !Task.isCancelled {
                let waiting = pending.values.reduce(0) { $0 + $1.count }
                // Claim when the queue may have work: at start, after a quiet interval, after a batch, or when
                // the lanes run short.
                if due || waiting < lanes {
                    let room = backlog - held.count
                    if room > 0 {
                        let saturated = pending.filter { $0.value.count >= perProjectAhead }.map(\.key)
                        do {
                            let claimed = try await queue.claim(
                                limit: room, perProject: perProjectAhead, excludingLanes: saturated, worker: workerID,
                                lease: lease)
                            held.add(claimed)
                            for job in claimed { pending[Self.lane(of: job), default: []].append(job) }
                        } catch {
                            logger.debug("job queue unavailable: \(error)")
                        }
                    }
                    due = false
                }
                // Free lanes take the project whose oldest job is oldest, with its held jobs as one batch.
                // Ids are time-ordered, so a project's roll-ups meet in finalize order.
                let ready = pending.filter { !busy.contains($0.key) }.map { ($0.key, $0.value.sorted { $0.id < $1.id }) }
                    .sorted { $0.1[0].id < $1.1[0].id }
                for (key, jobs) in ready where busy.count < lanes {
                    let batch = Array(jobs.prefix(batchLimit))
                    pending[key] = jobs.count > batch.count ? Array(jobs.dropFirst(batch.count)) : nil
                    busy.insert(key)
                    group.addTask {
                        await runBatch(batch, on: queue)
                        for job in batch { held.remove(job) }
                        return .finished(key)
                    }
                }
                if busy.count < lanes && !ticking {
                    ticking = true
                    group.addTask {
                        try? await Task.sleep(for: idleDelay)
                        return .tick
                    }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .finished(let key):
                    busy.remove(key)
                    // Claim again before the next batch, so that it takes every run queued meanwhile.
                    due = true
                case .tick:
                    ticking = false
                    due = true
                case .heartbeatStopped: break
                }
            }
            group.cancelAll()
        }
    }

    /// Renews the leases of every held job every third of the lease, until cancelled.
    func heartbeat(_ held: HeldJobs, on queue: JobQueue) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: lease / 3) } catch { return }
            do { try await queue.renew(held.snapshot, worker: workerID, lease: lease) } catch {
                logger.debug("could not renew job leases: \(error)")
            }
        }
    }

    /// A lane's jobs of one project. Roll-ups fold as one batch; should the batch fail, each job runs alone,
    /// so one bad run spends its own attempts and does not hold back the others.
    func runBatch(_ jobs: [JobRecord], on queue: JobQueue) async {
        guard jobs.count > 1, jobs.allSatisfy({ $0.kind == JobQueue.rollupKind }) else {
            for job in jobs { await runOne(job, on: queue) }
            return
        }
        do {
            // Where a roll-up job's time goes beside the fold itself ("roll-up folded"), for the debug log.
            let clock = ContinuousClock()
            let started = clock.now
            try await queue.begin(jobs)
            let begun = clock.now
            try await rollUp(jobs)
            let folded = clock.now
            try await queue.complete(jobs)
            logger.debug(
                "roll-up job",
                metadata: [
                    "jobs": "\(jobs.count)", "beginMs": "\(milliseconds(begun - started))",
                    "transactionMs": "\(milliseconds(folded - begun))", "completeMs": "\(milliseconds(clock.now - folded))",
                ])
            activity.recordWork()
        } catch let waiting as WaitingForEarlierRun {
            for job in jobs { await postpone(job, waiting, on: queue) }
            activity.recordWork()
        } catch {
            logger.info("roll-up batch failed; its jobs run one by one", metadata: ["jobs": "\(jobs.count)", "error": "\(error)"])
            for job in jobs { await runOne(job, on: queue) }
        }
    }

    /// One job: begun, performed, then completed, postponed (an earlier run of its project comes first) or failed.
    func runOne(_ job: JobRecord, on queue: JobQueue) async {
        do {
            let clock = ContinuousClock()
            let started = clock.now
            try await queue.begin(job)
            let begun = clock.now
            try await perform(job)
            let performed = clock.now
            try await queue.complete(job)
            logger.debug(
                "job done",
                metadata: [
                    "kind": "\(job.kind)", "beginMs": "\(milliseconds(begun - started))",
                    "transactionMs": "\(milliseconds(performed - begun))", "completeMs": "\(milliseconds(clock.now - performed))",
                ])
        } catch let waiting as WaitingForEarlierRun {
            await postpone(job, waiting, on: queue)
        } catch {
            logger.warning("job failed", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "error": "\(error)"])
            try? await queue.fail(job, error: "\(error)")
        }
        activity.recordWork()
    }

    /// Jobs of one lane run one at a time: a project's roll-ups (older jobs without a project in their
    /// payload each have a lane of their own; the roll-up still orders them).
    static func lane(of job: JobRecord) -> String {
        job.workspaceID + "/" + (JobQueue.laneKey(payload: job.payload) ?? job.id)
    }

    /// Puts a job back without spending an attempt: an earlier run of its project comes first.
    func postpone(_ job: JobRecord, _ waiting: WaitingForEarlierRun, on queue: JobQueue) async {
        try? await queue.postpone(job, by: waitDelay, reason: "waiting for the roll-up of the earlier run \(waiting.runID)")
    }

    func perform(_ job: JobRecord) async throws {
        switch job.kind {
        case JobQueue.rollupKind: try await rollUp([job])
        case JobQueue.shardCloseKind: try await closeIfStale(job)
        default: throw JobError.unknownKind(job.kind)
        }
    }

    /// Folds the roll-up jobs of one workspace (one project's, for a batch) as one batch; throws
    /// `WaitingForEarlierRun` when an earlier run of the project must be rolled up first.
    func rollUp(_ jobs: [JobRecord]) async throws {
        guard let first = jobs.first else { return }
        let payloads = try jobs.map { try JSONDecoder().decode(JobQueue.RollUpPayload.self, from: Data($0.payload.utf8)) }
        // On its last attempt a roll-up goes ahead even if an earlier run of the project never rolled up.
        // (Waiting for an earlier run spends no attempt, so only the job's own failures lead here.)
        let inOrder = jobs.allSatisfy { $0.attempts < $0.maxAttempts }
        let shardID = try await shard(of: first.workspaceID)
        let outcome = try await registry.withWorkspace(id: first.workspaceID, shardID: shardID) {
            try await $0.rollUp(runIDs: payloads.map(\.runId), inOrder: inOrder)
        }
        if case .waiting(let earlier) = outcome { throw WaitingForEarlierRun(runID: earlier) }
    }

    /// A sharded run's close check: closes it as partial when no shard came before its deadline.
    func closeIfStale(_ job: JobRecord) async throws {
        let payload = try JSONDecoder().decode(JobQueue.ShardClosePayload.self, from: Data(job.payload.utf8))
        let shardID = try await shard(of: job.workspaceID)
        _ = try await registry.withWorkspace(id: job.workspaceID, shardID: shardID) {
            try await $0.closeIfStale(runID: payload.runId)
        }
    }

    func shard(of workspaceID: String) async throws -> Int {
        if let known = shards.byWorkspace.withLock({ $0[workspaceID] }) { return known }
        guard let workspace = try await cluster.catalog.workspace(id: workspaceID) else {
            throw JobError.unknownWorkspace(workspaceID)
        }
        shards.byWorkspace.withLock { $0[workspaceID] = workspace.shardID }
        return workspace.shardID
    }

    struct WaitingForEarlierRun: Error {
        let runID: String
    }

    enum JobError: Error, CustomStringConvertible {
        case unknownKind(String)
        case unknownWorkspace(String)
        var description: String {
            switch self {
            case .unknownKind(let kind): "no handler for job kind '\(kind)'"
            case .unknownWorkspace(let id): "workspace \(id) is not in the catalog"
            }
        }
    }
}

/// The jobs a scheduler holds (claimed and not finished): what the heartbeat renews.
final class HeldJobs: Sendable {
    let jobs: Mutex<[JobRecord]>
    init(_ jobs: [JobRecord]) { self.jobs = Mutex(jobs) }

    var count: Int { jobs.withLock { $0.count } }
    var snapshot: [JobRecord] { jobs.withLock { $0 } }
    func add(_ more: [JobRecord]) { jobs.withLock { $0 += more } }
    func remove(_ job: JobRecord) { jobs.withLock { $0.removeAll { $0.id == job.id && $0.workspaceID == job.workspaceID } } }
}

/// The shard of each workspace the worker has met.
final class ShardsSeen: Sendable {
    let byWorkspace = Mutex<[String: Int]>([:])
}
