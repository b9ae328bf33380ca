import Domains
import Foundation
import Logging
import ServiceLifecycle
import Storage

/// Runs the post-ingest jobs of every physical server: one polling loop per server, claiming a
/// batch with `SKIP LOCKED`, so several Kaizen nodes can work the same queues side by side.
struct JobWorkerService: Service {
    let cluster: StorageCluster
    /// Finalizes in flight on this node: before each job the worker waits for them, up to `yieldLimit`.
    let activity: IngestActivity
    let logger: Logger
    var yieldLimit: Duration = .seconds(2)
    var idleDelay: Duration = .milliseconds(250)

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
                claimed = try await queue.claim(limit: 16).sorted { $0.id < $1.id }
            } catch {
                logger.debug("job queue unavailable: \(error)")
            }
            for job in claimed {
                await activity.quiet(upTo: yieldLimit)
                do {
                    try await perform(job, on: queue.server)
                    try await queue.complete(job)
                } catch {
                    logger.warning("job failed", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "error": "\(error)"])
                    try? await queue.fail(job, error: "\(error)")
                }
            }
            if claimed.isEmpty {
                do { try await Task.sleep(for: idleDelay) } catch { return }
            }
        }
    }

    struct RollupPayload: Decodable {
        let runId: String
    }

    func perform(_ job: JobRecord, on server: PhysicalServer) async throws {
        switch job.kind {
        case JobQueue.rollupKind:
            let payload = try JSONDecoder().decode(RollupPayload.self, from: Data(job.payload.utf8))
            // On its last attempt a roll-up goes ahead even if an earlier run of the project never rolled up.
            try await TenantStore(server: server, workspaceID: job.workspaceID, logger: logger)
                .rollUp(runID: payload.runId, inOrder: job.attempts < job.maxAttempts)
        default:
            throw JobError.unknownKind(job.kind)
        }
    }

    enum JobError: Error, CustomStringConvertible {
        case unknownKind(String)
        var description: String {
            switch self {
            case .unknownKind(let kind): "no handler for job kind '\(kind)'"
            }
        }
    }
}
