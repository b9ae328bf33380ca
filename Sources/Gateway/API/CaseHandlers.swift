import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listProjectCases(_ input: Operations.ListProjectCases.Input) async throws -> Operations.ListProjectCases.Output {
        let identity = try RequestIdentity.required()
        let q = input.query
        let size = try pageSize(q.limit, default: 100)
        if let text = q.q, text.unicodeScalars.count > 200 { throw DomainError.invalidParameter("q", "must be at most 200 characters") }
        let sort = q.sort.flatMap { CaseSort(rawValue: $0.rawValue) } ?? .name
        let after = try q.cursor.map { try Cursor.decode($0) }.flatMap { $0.isStart ? nil : $0 }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: q.workspace)
        let filter = CaseFilter(
            lastStatus: q.status.flatMap { CaseStatus(rawValue: $0.rawValue) }, suite: q.suite, text: q.q,
            flakyOnly: q.flaky ?? false, label: q.label, owner: q.owner)
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.cases(project: project, filter: filter, sort: sort, after: after, limit: size + 1)
        }
        let (page, next) = try Cursor.page(rows, size: size) { Cursor.encode(position(of: $0, sort: sort)) }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.CaseSummary.init), nextCursor: next))))
    }

    /// The case with this id in one of the caller's workspaces whose project the caller may see.
    func findCase(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, Project) {
        guard ResourceID.isValid(id, prefix: .testCase) else { throw DomainError.notFound("case '\(id)' not found") }
        for grant in identity.grants {
            guard let project = try await deps.registry.withWorkspace(grant, { try await $0.projectOfCase(id: id) }),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { continue }
            return (grant, project)
        }
        throw DomainError.notFound("case '\(id)' not found")
    }

    func getCase(_ input: Operations.GetCase.Input) async throws -> Operations.GetCase.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await findCase(identity, id: input.path.caseId)
        let detail = try await deps.registry.withWorkspace(grant) { try await $0.caseDetail(id: input.path.caseId, project: project) }
        return .ok(.init(body: .json(.init(detail, project: project))))
    }

    func updateCase(_ input: Operations.UpdateCase.Input) async throws -> Operations.UpdateCase.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
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
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let (grant, project) = try await findCase(identity, id: id)
        try requireWrite(grant)
        let owner: String?? = body.owner.map { $0.isEmpty ? nil : $0 }
        let detail = try await deps.registry.withWorkspace(grant) {
            try await $0.annotateCase(
                id: id, project: project, owner: owner, labels: labels, defectIDs: body.defects, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(detail, project: project))))
    }

    func position(of row: CaseSummaryRecord, sort: CaseSort) -> PagePosition {
        switch sort {
        case .name: PagePosition(text: row.name, number: nil, id: row.id)
        case .failures: PagePosition(text: nil, number: Int64(row.failed + row.broken), id: row.id)
        case .lastFailed:
            PagePosition(text: nil, number: row.lastFailedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0, id: row.id)
        }
    }
}

extension Components.Schemas.CaseDetail {
    init(_ detail: CaseDetail, project: Project) {
        self.init(
            value1: .init(detail.summary),
            value2: .init(
                project: .init(id: project.id, slug: project.slug),
                windows: detail.windows.map {
                    .init(
                        window: .init(rawValue: "\($0.days)d") ?? ._90d, results: $0.results, passRate: .number($0.passRate),
                        medianDurationMs: .number($0.medianDurationMs))
                },
                defects: detail.defects.map(Components.Schemas.DefectRef.init),
                recent: detail.recent.map {
                    .init(
                        runId: $0.runID, externalRunId: $0.externalRunId, branch: $0.branch, status: .init($0.status),
                        durationMs: Int($0.durationMs), errorMessage: $0.errorMessage, createdAt: $0.createdAt)
                },
                sameCommit: detail.sameCommit.map {
                    .init(commit: $0.commit, passedRunId: $0.passedRunID, failedRunId: $0.failedRunID, seenAt: $0.seenAt)
                },
                quarantine: detail.quarantine.map(Components.Schemas.Quarantine.init)))
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
        let attributed = try await deps.registry.withWorkspace(grant) { try await $0.failureGroups(run: run) }
        return .ok(
            .init(
                body: .json(
                    attributed.map { item in
                        let group = item.group
                        return .init(
                            fingerprint: group.fingerprint, errorType: group.errorType, sampleMessage: group.sampleMessage,
                            count: group.count, cases: group.cases.map { .init(caseId: $0.id, name: $0.name) },
                            isNew: group.firstSeenRunID.map { OpenAPIValueContainer(booleanLiteral: $0 == run.id) } ?? nil,
                            defects: item.defects.map(Components.Schemas.DefectRef.init))
                    })))
    }

    func listProjectFailureGroups(_ input: Operations.ListProjectFailureGroups.Input) async throws
        -> Operations.ListProjectFailureGroups.Output
    {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let before = try input.query.cursor.map { try Cursor.decode($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.failureGroups(
                project: project, before: before.flatMap { p in p.number.map { ($0, p.id) } }, limit: size + 1)
        }
        let (page, next) = try Cursor.page(rows, size: size) {
            Cursor.encode(PagePosition(text: nil, number: $0.lastSeenMicros, id: $0.fingerprint))
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
