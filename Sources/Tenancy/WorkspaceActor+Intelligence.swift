import Domains

/// Flakiness, trends, events, jobs and the roll-up. Reads and the policy write are `nonisolated`: the policy is
/// one row that every roll-up (on any node) reads afresh in its own transaction.
extension WorkspaceActor {
    public nonisolated func flakyCases(project: Project, after: (score: Double, caseID: String)?, limit: Int)
        async throws -> FlakyCasesPage
    {
        async let policy = repos.intelligence.flakyPolicy(projectID: project.id)
        async let rows = repos.intelligence.flakyCases(projectID: project.id, after: after, limit: limit)
        return FlakyCasesPage(policy: try await policy, cases: try await rows)
    }

    public nonisolated func flakyPolicy(project: Project) async throws -> FlakyPolicyRecord {
        try await repos.intelligence.flakyPolicy(projectID: project.id)
    }

    public nonisolated func setFlakyPolicy(project: Project, policy: FlakyPolicy, by actor: AuditActor) async throws
        -> FlakyPolicyRecord
    {
        let problems = policy.problems()
        if !problems.isEmpty { throw DomainError.validation(problems) }
        return try await repos.intelligence.setFlakyPolicy(projectID: project.id, policy: policy, by: actor)
    }

    public nonisolated func dailyCounts(project: Project, days: Int, branch: String?) async throws -> [String: DailyCounts] {
        try await repos.analytics.dailyCounts(projectIDs: [project.id], days: days, branch: branch)
    }

    /// This workspace's share of the overview over `projects`: daily counts, per-project totals and recent runs.
    public nonisolated func trends(projects: [Project], days: Int) async throws -> WorkspaceTrends {
        guard !projects.isEmpty else { return WorkspaceTrends(daily: [:], totals: [], recentRuns: []) }
        let ids = projects.map(\.id)
        async let daily = repos.analytics.dailyCounts(projectIDs: ids, days: days, branch: nil)
        async let totals = repos.analytics.projectTotals(projectIDs: ids, days: days)
        async let recent = repos.runs.recentRuns(projectIDs: ids, limit: 10)
        return WorkspaceTrends(daily: try await daily, totals: try await totals, recentRuns: try await recent)
    }

    public nonisolated func events(project: Project, kind: String?, before: String?, limit: Int) async throws
        -> [EventRecord]
    {
        try await repos.events.events(projectID: project.id, kind: kind, before: before, limit: limit)
    }

    /// The workspace's audit log, newest first: the rows held with its data merged with the catalog's
    /// (tokens, members, invitations). Ids are time-ordered across both, so one cursor pages both.
    public nonisolated func auditLog(filter: AuditFilter, limit: Int, catalog: AccountService, grant: WorkspaceGrant)
        async throws -> [AuditEvent]
    {
        try catalog.requireAdmin(grant)
        async let tenant = repos.events.auditEvents(filter: filter, limit: limit)
        let people = try await catalog.audit(in: grant, filter: filter, limit: limit)
        return Array((try await tenant + people).sorted { $0.id > $1.id }.prefix(limit))
    }

    public nonisolated func jobs(state: String?, limit: Int) async throws -> [JobRecord] {
        try await repos.jobs.jobs(state: state, limit: limit)
    }

    /// Folds a finalized run into the roll-ups, for the job worker. Storage orders roll-ups of a project in
    /// finalize order across every node (an advisory lock and the run sequence), so this needs no lane here.
    /// Several runs of one project fold as one batch (the worker hands over a project's queued runs).
    public nonisolated func rollUp(runIDs: [String], inOrder: Bool) async throws -> RollUpOutcome {
        try await repos.intelligence.rollUp(runIDs: runIDs, inOrder: inOrder)
    }
}
