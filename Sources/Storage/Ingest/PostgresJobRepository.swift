import Domains
import Tenancy

/// One workspace's view of its shard's job queue.
public struct PostgresJobRepository: JobRepository {
    let queue: JobQueue
    let workspaceID: String

    public func jobs(state: String?, limit: Int) async throws -> [JobRecord] {
        try await queue.jobs(workspaceID: workspaceID, state: state, limit: limit)
    }
}
