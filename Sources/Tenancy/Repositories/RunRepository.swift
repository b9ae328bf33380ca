import Domains

/// A workspace's runs and their case results.
public protocol RunRepository: Sendable {
    /// Writes a run, its results, steps and inventory rows, and queues its roll-up, in one transaction.
    /// Throws a unique violation when the externalRunId (or the sequence number) is already taken.
    func persist(_ new: NewRun) async throws -> PersistedRun
    /// Stores one shard of a sharded run (creating the run, `open`, with the first) and queues the check that
    /// closes it as partial should the next shard not come within the timeout.
    func persistShard(_ new: NewShard) async throws -> StoredShard
    /// Every result of a sharded run, for its close.
    func shardedResults(runID: String) async throws -> [ShardedResult]
    /// Closes a sharded run (nil when it was no longer open); a unique violation when `seq` is taken.
    func closeShardedRun(_ closing: ClosingRun) async throws -> RunRecord?
    /// The run when it is open and its shard deadline passed.
    func staleOpenRun(runID: String) async throws -> RunRecord?
    func run(id: String) async throws -> RunRecord?
    func run(projectID: String, externalRunId: String) async throws -> RunRecord?
    func latestRun(projectID: String, branch: String) async throws -> RunRecord?
    /// Newest first, before `beforeSeq` when given.
    func runs(projectID: String, branch: String?, beforeSeq: Int64?, limit: Int) async throws -> [RunRecord]
    func maxRunSequence(projectID: String) async throws -> Int64
    /// Finalized runs of the project whose roll-up is running or queued for its first attempt (one waiting for a
    /// retry does not count), and how long ago the oldest of them was finalized.
    func rollUpBacklog(projectID: String) async throws -> RollUpBacklog
    /// Status by case key, the baseline of the next finalize.
    func caseStatuses(runID: String) async throws -> [String: CaseStatus]
    func caseResults(
        runID: String, filter: CaseResultFilter, onlyRegressed: Bool, afterOrdinal: Int, limit: Int
    ) async throws -> [CaseResultRecord]
    func caseResult(runID: String, caseID: String) async throws -> (CaseResultRecord, [FlatStep])?
    func runAttachments(runID: String, ids: [String]) async throws -> [DeclaredAttachment]
    func caseHistory(caseID: String, projectID: String, branch: String, limit: Int) async throws -> [CaseHistoryEntry]
    /// The newest runs of the given projects.
    func recentRuns(projectIDs: [String], limit: Int) async throws -> [RunRecord]
}
