import Domains

/// What happened in a project (regressions, flaky cases detected, defects opened …), as stored by writes and roll-ups.
public protocol EventRepository: Sendable {
    /// A page of the project's events, newest first, optionally of one kind.
    func events(projectID: String, kind: String?, before: String?, limit: Int) async throws -> [EventRecord]
    /// The workspace's part of the audit log held with its data (projects, policies, defects, case
    /// annotations), newest first.
    func auditEvents(filter: AuditFilter, limit: Int) async throws -> [AuditEvent]
    /// The workspace's numbered events after `position`, oldest first, of these projects (nil: all) and
    /// kinds (nil: all).
    func stream(after position: Int64, projectIDs: [String]?, kinds: [String]?, limit: Int) async throws -> [StreamedEvent]
    /// The workspace's highest numbered position (0 when it has none): where a stream without
    /// `Last-Event-ID` starts.
    func latestPosition() async throws -> Int64
}
