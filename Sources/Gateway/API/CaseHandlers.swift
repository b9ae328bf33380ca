import Domains
import Foundation
import OpenAPIRuntime
import Storage

extension KaizenAPI {
    func listProjectCases(_ input: Operations.ListProjectCases.Input) async throws -> Operations.ListProjectCases.Output {
        let identity = try RequestIdentity.required()
        let q = input.query
        let size = try pageSize(q.limit, default: 100)
        if let text = q.q, text.unicodeScalars.count > 200 { throw APIError.invalidParameter("q", "must be at most 200 characters") }
        let sort = q.sort.flatMap { CaseSort(rawValue: $0.rawValue) } ?? .name
        let after = try q.cursor.map { try Cursor.decode($0) }.flatMap { $0.isStart ? nil : $0 }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: q.workspace)
        let filter = CaseFilter(
            lastStatus: q.status.flatMap { CaseStatus(rawValue: $0.rawValue) }, suite: q.suite, text: q.q,
            flakyOnly: q.flaky ?? false, label: q.label, owner: q.owner)
        let rows = try await deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
            .cases(projectID: project.id, filter: filter, sort: sort, after: after, limit: size + 1)
        let (page, next) = try Cursor.page(rows, size: size) { Cursor.encode(position(of: $0, sort: sort)) }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.CaseSummary.init), nextCursor: next))))
    }

    /// The case with this id in one of the caller's workspaces whose project the caller may see.
    func findCase(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, Project) {
        guard ResourceID.isValid(id, prefix: .testCase) else { throw APIError.notFound("case '\(id)' not found") }
        for grant in identity.grants {
            let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
            guard let projectID = try await store.caseProject(id: id),
                let project = try await deps.registry.withWorkspace(grant, { try await $0.projects() })
                    .first(where: { $0.id == projectID }),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { continue }
            return (grant, project)
        }
        throw APIError.notFound("case '\(id)' not found")
    }

    func getCase(_ input: Operations.GetCase.Input) async throws -> Operations.GetCase.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await findCase(identity, id: input.path.caseId)
        return .ok(.init(body: .json(try await caseDetail(id: input.path.caseId, grant: grant, project: project))))
    }

    func updateCase(_ input: Operations.UpdateCase.Input) async throws -> Operations.UpdateCase.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw APIError.badRequest("expected application/json") }
        let id = input.path.caseId
        var problems: [FieldProblem] = []
        var labels = body.labels
        if let given = body.labels {
            if given.count > 50 { problems.append(.init(pointer: "/labels", message: "at most 50 labels")) }
            for (index, label) in given.enumerated() where label.isEmpty || label.unicodeScalars.count > 100 {
                problems.append(.init(pointer: "/labels/\(index)", message: "must be 1–100 characters"))
            }
            var seen = Set<String>()
            labels = given.filter { seen.insert($0).inserted }
        }
        if let owner = body.owner, owner.unicodeScalars.count > 200 {
            problems.append(.init(pointer: "/owner", message: "must be at most 200 characters"))
        }
        if let defects = body.defects, defects.count > 100 {
            problems.append(.init(pointer: "/defects", message: "at most 100 defects"))
        }
        if !problems.isEmpty { throw APIError.validation(problems) }
        let (grant, project) = try await findCase(identity, id: id)
        try requireWrite(grant)
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        if let defects = body.defects {
            let known = try await store.existingDefects(projectID: project.id, ids: defects)
            let missing = defects.enumerated().filter { !known.contains($0.element) }.map {
                FieldProblem(pointer: "/defects/\($0.offset)", message: "no defect '\($0.element)' in project '\(project.slug)'")
            }
            if !missing.isEmpty { throw APIError.validation(missing) }
        }
        guard try await store.caseSummary(id: id) != nil else {
            throw APIError.conflict("case '\(id)' is still being rolled up from its first run; retry in a moment")
        }
        let owner: String?? = body.owner.map { $0.isEmpty ? nil : $0 }
        _ = try await store.annotateCase(
            id: id, owner: owner, labels: labels, defectIDs: body.defects.map { Array(Set($0)).sorted() }, by: identity.actor)
        return .ok(.init(body: .json(try await caseDetail(id: id, grant: grant, project: project))))
    }

    func caseDetail(id: String, grant: WorkspaceGrant, project: Project) async throws -> Components.Schemas.CaseDetail {
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        guard let summary = try await store.caseSummary(id: id) else {
            throw APIError.notFound("case '\(id)' has no rolled-up results yet")
        }
        async let recent = store.recentResults(caseID: id, limit: 20)
        async let windows = store.caseWindows(caseID: id)
        async let linked = store.defectsLinked(projectID: project.id, fingerprints: [], caseIDs: [id])
        let history: [Components.Schemas.HistoryEntry] = try await recent.map {
            .init(
                runId: $0.runID, externalRunId: $0.externalRunId, branch: $0.branch, status: .init($0.status),
                durationMs: Int($0.durationMs), errorMessage: $0.errorMessage, createdAt: $0.createdAt)
        }
        let spans: [Components.Schemas.CaseWindow] = try await windows.map {
            .init(
                window: .init(rawValue: "\($0.days)d") ?? ._90d, results: $0.results, passRate: .number($0.passRate),
                medianDurationMs: .number($0.medianDurationMs))
        }
        return Components.Schemas.CaseDetail(
            value1: .init(summary),
            value2: .init(
                project: .init(id: project.id, slug: project.slug), windows: spans,
                defects: try await linked.byCase[id, default: []].map(Components.Schemas.DefectRef.init), recent: history))
    }

    func position(of row: CaseSummaryRecord, sort: CaseSort) -> CasePosition {
        switch sort {
        case .name: CasePosition(text: row.name, number: nil, id: row.id)
        case .failures: CasePosition(text: nil, number: Int64(row.failed + row.broken), id: row.id)
        case .lastFailed:
            CasePosition(text: nil, number: row.lastFailedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0, id: row.id)
        }
    }
}

extension Components.Schemas.CaseSummary {
    init(_ r: CaseSummaryRecord) {
        let ran = r.runs - r.skipped
        self.init(
            id: r.id, key: r.key, name: r.name, suite: r.suite, file: r.file, lastStatus: .init(r.lastStatus),
            lastRunId: r.lastRunID, firstSeenAt: r.firstSeenAt, lastSeenAt: r.lastSeenAt,
            lastFailedAt: .timestamp(r.lastFailedAt), runs: r.runs, passed: r.passed, failed: r.failed, broken: r.broken,
            skipped: r.skipped, flaky: r.flaky, passRate: .number(ran > 0 ? Double(r.passed) / Double(ran) : nil),
            avgDurationMs: r.runs > 0 ? Int(r.totalDurationMs / Int64(r.runs)) : 0, owner: r.owner, labels: r.labels,
            annotatedBy: r.annotatedBy, annotatedAt: r.annotatedAt, isFlaky: r.isFlaky, flakyScore: r.flakyScore)
    }
}

extension KaizenAPI {
    func listRunFailureGroups(_ input: Operations.ListRunFailureGroups.Input) async throws
        -> Operations.ListRunFailureGroups.Output
    {
        let identity = try RequestIdentity.required()
        let (grant, _, run) = try await findRun(identity, id: input.path.runId)
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        let groups = try await store.runFailureGroups(runID: run.id)
        let linked = try await store.defectsLinked(
            projectID: run.projectID, fingerprints: groups.map(\.fingerprint), caseIDs: groups.flatMap { $0.cases.map(\.id) })
        return .ok(
            .init(
                body: .json(
                    groups.map { group in
                        .init(
                            fingerprint: group.fingerprint, errorType: group.errorType, sampleMessage: group.sampleMessage,
                            count: group.count, cases: group.cases.map { .init(caseId: $0.id, name: $0.name) },
                            isNew: group.firstSeenRunID.map { OpenAPIValueContainer(booleanLiteral: $0 == run.id) } ?? nil,
                            defects: attributed(group, linked).map(Components.Schemas.DefectRef.init))
                    })))
    }

    func listProjectFailureGroups(_ input: Operations.ListProjectFailureGroups.Input) async throws
        -> Operations.ListProjectFailureGroups.Output
    {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let before = try input.query.cursor.map { try Cursor.decode($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let rows = try await deps.cluster.tenant(grant.workspaceID, shard: grant.shardID).projectFailureGroups(
            projectID: project.id, before: before.flatMap { p in p.number.map { ($0, p.id) } }, limit: size + 1)
        let (page, next) = try Cursor.page(rows, size: size) {
            Cursor.encode(CasePosition(text: nil, number: $0.lastSeenMicros, id: $0.fingerprint))
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map {
                            .init(
                                fingerprint: $0.fingerprint, errorType: $0.errorType, sampleMessage: $0.sampleMessage,
                                firstSeenRunId: $0.firstSeenRunID, firstSeenAt: $0.firstSeenAt, lastSeenRunId: $0.lastSeenRunID,
                                lastSeenAt: $0.lastSeenAt, runs: $0.runs, occurrences: $0.occurrences,
                                affectedCases: $0.affectedCases, cases: $0.recentCases.map { .init(caseId: $0.id, name: $0.name) })
                        }, nextCursor: next))))
    }
}

/// A run's failure group is attributed to the defects linked to its cluster or to any of its cases.
func attributed(
    _ group: RunFailureGroupRecord, _ linked: (byGroup: [String: [DefectRef]], byCase: [String: [DefectRef]])
) -> [DefectRef] {
    var seen = Set<String>()
    let all = linked.byGroup[group.fingerprint, default: []] + group.cases.flatMap { linked.byCase[$0.id, default: []] }
    return all.filter { seen.insert($0.id).inserted }
}

extension Components.Schemas.DefectRef {
    init(_ ref: DefectRef) {
        self.init(id: ref.id, title: ref.title, status: .init(ref.status))
    }
}

extension Components.Schemas.DefectStatus {
    init(_ status: DefectStatus) {
        self = Self(rawValue: status.rawValue) ?? .open
    }
}
