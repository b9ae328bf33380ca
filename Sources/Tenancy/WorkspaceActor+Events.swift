import Domains

/// The workspace's event log as live streams read it. Reads only: `nonisolated`, straight from storage (the log
/// is written by other transactions and numbered by the sequencer, on any node).
extension WorkspaceActor {
    public nonisolated func streamEvents(after position: Int64, projectIDs: [String]?, kinds: [String]?, limit: Int) async throws
        -> [StreamedEvent]
    {
        try await repos.events.stream(after: position, projectIDs: projectIDs, kinds: kinds, limit: limit)
    }

    public nonisolated func latestEventPosition() async throws -> Int64 {
        try await repos.events.latestPosition()
    }
}
