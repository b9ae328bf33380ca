import Domains

/// What happened in a project (regressions, flaky cases detected, defects opened …), as stored by writes and roll-ups.
public protocol EventRepository: Sendable {
    /// A page of the project's events, newest first, optionally of one kind.
    func events(projectID: String, kind: String?, before: String?, limit: Int) async throws -> [EventRecord]
}
