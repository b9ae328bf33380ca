import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    /// The run with this id in one of the caller's workspaces (404 otherwise), and its project.
    func findRun(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, Project, RunRecord) {
        guard ResourceID.isValid(id, prefix: .run) else { throw DomainError.notFound("run '\(id)' not found") }
        for grant in identity.grants {
            let found = try await deps.registry.withWorkspace(grant) { try await $0.runWithProject(id: id) }
            if let (project, run) = found, project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass) {
                return (grant, project, run)
            }
        }
        throw DomainError.notFound("run '\(id)' not found")
    }

    func getRun(_ input: Operations.GetRun.Input) async throws -> Operations.GetRun.Output {
        let identity = try RequestIdentity.required()
        let (grant, project, run) = try await findRun(identity, id: input.path.runId)
        // An open sharded run still changes: only a closed run's answer is kept.
        if !run.isOpen { RunReadFill.current?.set(workspaceID: grant.workspaceID, accessMode: project.accessMode) }
        let baseline = try await run.baselineRunID.flatMapAsync { id in
            try await self.deps.registry.withWorkspace(grant) { try await $0.run(id: id) }
        }
        return .ok(.init(body: .json(try schema(run, project: project, baseline: baseline))))
    }

    func schema(_ run: RunRecord, project: Project, baseline: RunRecord?) throws -> Components.Schemas.Run {
        .init(
            id: run.id, project: .init(id: project.id, slug: project.slug), externalRunId: run.externalRunId,
            branch: run.branch, commit: run.commit, buildUrl: run.buildURL, status: .init(rawValue: run.status) ?? .closed,
            shards: run.shards.map { .init(total: $0.total, received: $0.received) }, startedAt: run.startedAt,
            finishedAt: run.finishedAt, env: .init(additionalProperties: run.env), totals: .init(run.totals),
            regression: try .init(run.regression, baseline: baseline), gate: .init(run.gate),
            casesUrl: "\(deps.ingest.publicURL.value)/v1/runs/\(run.id)/cases", kenshoReportUrl: reportURL(run.id),
            createdAt: run.createdAt)
    }

    func listRunCases(_ input: Operations.ListRunCases.Input) async throws -> Operations.ListRunCases.Output {
        let page = try await casePage(
            runID: input.path.runId, status: input.query.status.map { CaseStatus(rawValue: $0.rawValue) ?? .passed },
            suite: input.query.suite, text: input.query.q.flatMap { $0.isEmpty ? nil : $0 },
            bucket: nil, onlyRegressed: false, cursor: input.query.cursor, limit: input.query.limit)
        return .ok(.init(body: .json(page)))
    }

    func listRunRegression(_ input: Operations.ListRunRegression.Input) async throws -> Operations.ListRunRegression.Output {
        let page = try await casePage(
            runID: input.path.runId, status: nil,
            bucket: input.query.bucket.flatMap { RegressionBucket(rawValue: $0.rawValue) }, onlyRegressed: true,
            cursor: input.query.cursor, limit: input.query.limit)
        return .ok(.init(body: .json(page)))
    }

    func casePage(
        runID: String, status: CaseStatus?, suite: String? = nil, text: String? = nil, bucket: RegressionBucket?,
        onlyRegressed: Bool, cursor: String?, limit: Int?
    ) async throws -> Components.Schemas.CaseResultPage {
        let identity = try RequestIdentity.required()
        let size = try pageSize(limit, default: 1000)
        let after = try cursor.flatMap { try Cursor.decodeNumber($0) } ?? -1
        let (grant, _, run) = try await findRun(identity, id: runID)
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.caseResults(
                run: run, filter: .init(status: status, suite: suite, text: text, bucket: bucket), onlyRegressed: onlyRegressed, afterOrdinal: Int(after),
                limit: size + 1)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(Int64($0.ordinal)) }
        return .init(items: page.map(Components.Schemas.CaseResult.init), nextCursor: next)
    }

    func getRunCase(_ input: Operations.GetRunCase.Input) async throws -> Operations.GetRunCase.Output {
        let identity = try RequestIdentity.required()
        let (grant, _, run) = try await findRun(identity, id: input.path.runId)
        guard let found = try await deps.registry.withWorkspace(grant, { try await $0.caseResult(run: run, caseID: input.path.caseId) })
        else { throw DomainError.notFound("case '\(input.path.caseId)' not found in run '\(run.id)'") }
        let (result, steps, attachments, history) = (found.result, found.steps, found.attachments, found.history)
        func node(_ n: StepNode) -> Components.Schemas.StepResult {
            .init(
                name: n.step.name, status: .init(n.step.status), durationMs: Int(n.step.durationMs),
                attachments: n.step.attachments, steps: n.children.map(node))
        }
        let detail = Components.Schemas.CaseResultDetail(
            value1: .init(result),
            value2: .init(
                steps: StepNode.tree(steps).map(node),
                attachments: attachments.map {
                    .init(
                        id: $0.id,
                        downloadUrl: "\(deps.ingest.publicURL.value)/v1/runs/\(run.id)/attachments/\($0.id)",
                        sha256: $0.sha256, size: Int($0.size), contentType: $0.contentType)
                },
                history: history.map {
                    .init(
                        runId: $0.runID, externalRunId: $0.externalRunId, branch: $0.branch, status: .init($0.status),
                        durationMs: Int($0.durationMs), errorMessage: $0.errorMessage, createdAt: $0.createdAt)
                }))
        return .ok(.init(body: .json(detail)))
    }

    func downloadAttachment(_ input: Operations.DownloadAttachment.Input) async throws
        -> Operations.DownloadAttachment.Output
    {
        let identity = try RequestIdentity.required()
        let (grant, _, run) = try await findRun(identity, id: input.path.runId)
        let found = try await deps.registry.withWorkspace(grant) {
            try await $0.attachment(run: run, id: input.path.attachmentId, expiresSeconds: UploadSigner.urlLifetimeSeconds)
        }
        guard let (_, download) = found else {
            throw DomainError.notFound("attachment '\(input.path.attachmentId)' not found in run '\(run.id)'")
        }
        switch download {
        case .redirect(let url):
            return .found(.init(headers: .init(location: url)))
        case .stream(let chunks, let length):
            let body = HTTPBody(chunks, length: .known(length), iterationBehavior: .single)
            return .ok(.init(body: .binary(body)))
        }
    }

    func listProjectRuns(_ input: Operations.ListProjectRuns.Input) async throws -> Operations.ListProjectRuns.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 50)
        let before = try input.query.cursor.flatMap { try Cursor.decodeNumber($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let runs = try await deps.registry.withWorkspace(grant) {
            try await $0.runs(project: project, branch: input.query.branch, beforeSeq: before, limit: size + 1)
        }
        let (page, next) = Cursor.page(runs, size: size) { Cursor.encode($0.run.seq) }
        let items = try page.map { try schema($0.run, project: project, baseline: $0.baseline) }
        return .ok(.init(body: .json(.init(items: items, nextCursor: next))))
    }

    func pageSize(_ limit: Int?, default value: Int) throws -> Int {
        guard let limit else { return value }
        guard (1...1000).contains(limit) else { throw DomainError.invalidParameter("limit", "must be 1–1000") }
        return limit
    }
}

extension Components.Schemas.CaseStatus {
    init(_ status: CaseStatus) {
        self = Self(rawValue: status.rawValue) ?? .broken
    }
}

extension Components.Schemas.CaseResult {
    init(_ r: CaseResultRecord) {
        self.init(
            caseId: r.caseID, key: r.caseKey, name: r.name, suite: r.suite, fullName: r.fullName, file: r.file,
            status: .init(r.status), durationMs: Int(r.durationMs), attempts: r.attempts, flaky: r.flaky,
            regression: r.regression.flatMap { Components.Schemas.RegressionBucket(rawValue: $0.rawValue) },
            error: r.error.map { .init(_type: $0.type, message: $0.message, trace: $0.trace) },
            labels: r.labels.isEmpty ? nil : .init(additionalProperties: r.labels),
            parameters: r.parameters.isEmpty ? nil : .init(additionalProperties: r.parameters))
    }
}

extension Optional {
    func flatMapAsync<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
