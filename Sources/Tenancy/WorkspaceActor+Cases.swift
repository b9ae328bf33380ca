import Domains

/// The case inventory and failure clusters. Reads are `nonisolated`; annotating a case is one transaction that
/// needs no in-process state, so it runs outside the actor too.
extension WorkspaceActor {
    public nonisolated func cases(project: Project, filter: CaseFilter, sort: CaseSort, after: PagePosition?, limit: Int)
        async throws -> [CaseSummaryRecord]
    {
        try await repos.inventory.cases(projectID: project.id, filter: filter, sort: sort, after: after, limit: limit)
    }

    /// The project of a case of this workspace, or nil.
    public func projectOfCase(id: String) async throws -> Project? {
        guard ResourceID.isValid(id, prefix: .testCase), let projectID = try await repos.inventory.caseProject(id: id)
        else { return nil }
        return try await project(id: projectID)
    }

    /// A case with its windows, linked defects and latest results; `notFound` until its first run is rolled up.
    public nonisolated func caseDetail(id: String, project: Project, nowMilliseconds: UInt64 = Clock.nowMilliseconds())
        async throws -> CaseDetail
    {
        guard let summary = try await repos.inventory.caseSummary(id: id) else {
            throw DomainError.notFound("case '\(id)' has no rolled-up results yet")
        }
        async let recent = repos.inventory.recentResults(caseID: id, limit: 20)
        async let windows = repos.inventory.caseWindows(caseID: id, nowMilliseconds: nowMilliseconds)
        async let linked = repos.defects.defectsLinked(projectID: project.id, fingerprints: [], caseIDs: [id])
        async let sameCommit = repos.inventory.sameCommitEvidence(caseID: id)
        async let quarantine = repos.ci.quarantineOf(caseID: id)
        return CaseDetail(
            summary: summary, recent: try await recent, windows: try await windows,
            defects: try await linked.byCase[id, default: []], sameCommit: try await sameCommit, quarantine: try await quarantine)
    }

    /// Sets a case's owner, labels and linked defects (nil leaves a field as it is; `owner` `.some(nil)` clears it).
    /// Every defect must be the project's; a case still being rolled up from its first run is a conflict.
    public nonisolated func annotateCase(
        id: String, project: Project, owner: String??, labels: [String]?, defectIDs: [String]?, by actor: AuditActor
    ) async throws -> CaseDetail {
        if let defectIDs {
            let known = try await repos.defects.existingDefects(projectID: project.id, ids: defectIDs)
            let missing = defectIDs.enumerated().filter { !known.contains($0.element) }.map {
                FieldProblem(pointer: "/defects/\($0.offset)", message: "no defect '\($0.element)' in project '\(project.slug)'")
            }
            if !missing.isEmpty { throw DomainError.validation(missing) }
        }
        guard try await repos.inventory.caseSummary(id: id) != nil else {
            throw DomainError.conflict("case '\(id)' is still being rolled up from its first run; retry in a moment")
        }
        _ = try await repos.inventory.annotateCase(
            id: id, owner: owner, labels: labels, defectIDs: defectIDs.map { Array(Set($0)).sorted() }, by: actor)
        return try await caseDetail(id: id, project: project)
    }

    /// A run's failure clusters, each attributed to the defects linked to it or to any of its cases.
    public nonisolated func failureGroups(run: RunRecord) async throws -> [AttributedFailureGroup] {
        let groups = try await repos.intelligence.runFailureGroups(runID: run.id)
        let linked = try await repos.defects.defectsLinked(
            projectID: run.projectID, fingerprints: groups.map(\.fingerprint), caseIDs: groups.flatMap { $0.cases.map(\.id) })
        return groups.map { group in
            var seen = Set<String>()
            let all = linked.byGroup[group.fingerprint, default: []] + group.cases.flatMap { linked.byCase[$0.id, default: []] }
            return AttributedFailureGroup(group: group, defects: all.filter { seen.insert($0.id).inserted })
        }
    }

    /// A project's clusters, most recently seen first.
    public nonisolated func failureGroups(project: Project, before: (micros: Int64, fingerprint: String)?, limit: Int)
        async throws -> [FailureGroupRecord]
    {
        try await repos.intelligence.projectFailureGroups(projectID: project.id, before: before, limit: limit)
    }
}
