import Domains

/// What happened in a project (regressions, flaky cases detected, defects opened …), as stored by writes and roll-ups.
public protocol EventRepository: Sendable {
    /// A page of the project's events, newest first, optionally of one kind.
    func events(projectID: String, kind: String?, before: String?, limit: Int) async throws -> [EventRecord]
    /// The workspace's part of the audit log held with its data (projects, policies, defects, case
    /// annotations), newest first.
    func auditEvents(filter: AuditFilter, limit: Int) async throws -> [AuditEvent]
}
