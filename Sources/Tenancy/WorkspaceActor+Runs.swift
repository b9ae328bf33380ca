import Domains

/// Runs and their results. All reads: `nonisolated`, straight from storage (stored runs never change), except
/// `run(id:)`, which the actor caches.
extension WorkspaceActor {
    /// A page of a project's runs, newest first, each with its baseline. `limit + 1` rows are read so the
    /// caller can tell whether a next page exists.
    public nonisolated func runs(project: Project, branch: String?, beforeSeq: Int64?, limit: Int) async throws
        -> [RunWithBaseline]
    {
        let runs = try await repos.runs.runs(projectID: project.id, branch: branch, beforeSeq: beforeSeq, limit: limit)
        var known = Dictionary(runs.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [RunWithBaseline] = []
        for run in runs {
            var baseline: RunRecord?
            if let id = run.baselineRunID {
                baseline = known[id]
                if baseline == nil { baseline = try await self.run(id: id) }
                known[id] = baseline
            }
            result.append(RunWithBaseline(run: run, baseline: baseline))
        }
        return result
    }

    /// A run and the project it belongs to, or nil when this workspace has no such run.
    public func runWithProject(id: String) async throws -> (Project, RunRecord)? {
        guard let run = try await run(id: id), let project = try await project(id: run.projectID) else { return nil }
        return (project, run)
    }

    public nonisolated func caseResults(
        run: RunRecord, filter: CaseResultFilter, onlyRegressed: Bool, afterOrdinal: Int, limit: Int
    ) async throws -> [CaseResultRecord] {
        try await repos.runs.caseResults(
            runID: run.id, filter: filter, onlyRegressed: onlyRegressed, afterOrdinal: afterOrdinal, limit: limit)
    }

    /// One case's result in a run with its steps, attachments and the last 20 results on the run's branch.
    public nonisolated func caseResult(run: RunRecord, caseID: String) async throws -> CaseResultDetail? {
        guard ResourceID.isValid(caseID, prefix: .testCase),
            let (result, steps) = try await repos.runs.caseResult(runID: run.id, caseID: caseID)
        else { return nil }
        let ids = Array(Set(result.attachments + steps.flatMap(\.attachments))).sorted()
        async let attachments = repos.runs.runAttachments(runID: run.id, ids: ids)
        async let history = repos.runs.caseHistory(
            caseID: result.caseID, projectID: run.projectID, branch: run.branch, limit: 20)
        return CaseResultDetail(result: result, steps: steps, attachments: try await attachments, history: try await history)
    }

    /// An attachment of a run and how to deliver it; nil when the run has no such attachment or its bytes are gone.
    public nonisolated func attachment(run: RunRecord, id: String, expiresSeconds: Int) async throws
        -> (DeclaredAttachment, BlobDownload)?
    {
        guard let attachment = try await repos.runs.runAttachments(runID: run.id, ids: [id]).first,
            let download = try await blobs.download(attachment, expiresSeconds: expiresSeconds)
        else { return nil }
        return (attachment, download)
    }

    /// The project's page: its stats, history range, most failing suites and defect counts.
    public nonisolated func overview(of project: Project) async throws -> ProjectOverview {
        async let stats = repos.projects.projectStats()
        async let history = repos.projects.projectHistory(projectID: project.id, topSuites: 5)
        async let defects = repos.defects.defectCounts(projectID: project.id)
        return ProjectOverview(stats: try await stats[project.id], history: try await history, defectCounts: try await defects)
    }

    /// Stats of every project of the workspace, by project id.
    public nonisolated func projectStats() async throws -> [String: ProjectStatsRecord] {
        try await repos.projects.projectStats()
    }
}
