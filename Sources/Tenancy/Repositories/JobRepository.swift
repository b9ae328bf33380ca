import Domains

/// A workspace's background jobs, for operators (the worker leases jobs through `JobQueue`).
public protocol JobRepository: Sendable {
    func jobs(state: String?, limit: Int) async throws -> [JobRecord]
}
