import Domains
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import Tenancy

/// Runs the post-ingest jobs of every physical server: one polling loop per server, claiming a
/// batch with `SKIP LOCKED`, so several Kaizen nodes can work the same queues side by side.
///
/// Claims are leases: while a batch runs, a heartbeat renews the leases of its unfinished jobs every
/// third of the lease, so a job is taken back by another node (or this one, restarted) within
/// `lease` of its worker dying — never while a live worker is still on it.
struct JobWorkerService: Service {
    let cluster: StorageCluster
    /// Roll-ups go through the workspace, like every other use of a tenant's data.
    let registry: WorkspaceRegistry
    /// Shard of each workspace met so far (a workspace never changes shard).
    let shards = ShardsSeen()
    /// Finalizes in flight on this node: before each job the worker waits for them, up to `yieldLimit`.
    let activity: IngestActivity
    let logger: Logger
    var lease: Duration = .seconds(15)
    var yieldLimit: Duration = .seconds(2)
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

    func work(_ queue: JobQueue) async {
        while !Task.isCancelled {
            var claimed: [JobRecord] = []
            do {
                // Ids are time-ordered: oldest first, so a project's roll-ups meet in finalize order.
                claimed = try await queue.claim(limit: 16, worker: workerID, lease: lease).sorted { $0.id < $1.id }
            } catch {
                logger.debug("job queue unavailable: \(error)")
            }
            if !claimed.isEmpty { await runBatch(claimed, on: queue) }
            if claimed.isEmpty {
                do { try await Task.sleep(for: idleDelay) } catch { return }
            }
        }
    }

    /// Runs a claimed batch in order while a heartbeat keeps the leases of its unfinished jobs alive.
    func runBatch(_ batch: [JobRecord], on queue: JobQueue) async {
        let remaining = HeldJobs(batch)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: lease / 3) } catch { return }
                    let held = remaining.jobs.withLock { $0 }
                    do { try await queue.renew(held, worker: workerID, lease: lease) } catch {
                        logger.debug("could not renew job leases: \(error)")
                    }
                }
            }
            for job in batch {
                await activity.quiet(upTo: yieldLimit)
                do {
                    try await queue.begin(job)
                    try await perform(job)
                    try await queue.complete(job)
                } catch let waiting as WaitingForEarlierRun {
                    let earlier = waiting.runID
                    try? await queue.postpone(job, by: waitDelay, reason: "waiting for the roll-up of the earlier run \(earlier)")
                } catch {
                    logger.warning("job failed", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "error": "\(error)"])
                    try? await queue.fail(job, error: "\(error)")
                }
                remaining.jobs.withLock { $0.removeAll { $0.id == job.id && $0.workspaceID == job.workspaceID } }
            }
            group.cancelAll()
        }
    }

    struct RollupPayload: Decodable {
        let runId: String
    }

    func perform(_ job: JobRecord) async throws {
        switch job.kind {
        case JobQueue.rollupKind:
            let payload = try JSONDecoder().decode(RollupPayload.self, from: Data(job.payload.utf8))
            // On its last attempt a roll-up goes ahead even if an earlier run of the project never rolled up.
            // (Waiting for an earlier run spends no attempt, so only the job's own failures lead here.)
            let shardID = try await shard(of: job.workspaceID)
            let outcome = try await registry.withWorkspace(id: job.workspaceID, shardID: shardID) {
                try await $0.rollUp(runID: payload.runId, inOrder: job.attempts < job.maxAttempts)
            }
            if case .waiting(let earlier) = outcome { throw WaitingForEarlierRun(runID: earlier) }
        default:
            throw JobError.unknownKind(job.kind)
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

/// The jobs of a batch not finished yet: what the heartbeat renews.
final class HeldJobs: Sendable {
    let jobs: Mutex<[JobRecord]>
    init(_ jobs: [JobRecord]) { self.jobs = Mutex(jobs) }
}

/// The shard of each workspace the worker has met.
final class ShardsSeen: Sendable {
    let byWorkspace = Mutex<[String: Int]>([:])
}
