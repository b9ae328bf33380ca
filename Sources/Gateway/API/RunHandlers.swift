import Domains
import Foundation
import OpenAPIRuntime
import Storage
import Tenancy

extension KaizenAPI {
    /// The run with this id in one of the caller's workspaces (404 otherwise), and its project.
    func findRun(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, Project, RunRecord) {
        guard ResourceID.isValid(id, prefix: .run) else { throw APIError.notFound("run '\(id)' not found") }
        for grant in identity.grants {
            let found = try await deps.registry.withWorkspace(grant) { actor -> (Project, RunRecord)? in
                guard let run = try await actor.run(id: id) else { return nil }
                guard let project = try await actor.projects().first(where: { $0.id == run.projectID }) else { return nil }
                return (project, run)
            }
            if let (project, run) = found, project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass) {
                return (grant, project, run)
            }
        }
        throw APIError.notFound("run '\(id)' not found")
    }

    func getRun(_ input: Operations.GetRun.Input) async throws -> Operations.GetRun.Output {
        let identity = try RequestIdentity.required()
        let (grant, project, run) = try await findRun(identity, id: input.path.runId)
        RunReadFill.current?.set(workspaceID: grant.workspaceID, accessMode: project.accessMode)
        let baseline = try await run.baselineRunID.flatMapAsync { id in
            try await self.deps.registry.withWorkspace(grant) { try await $0.run(id: id) }
        }
        return .ok(.init(body: .json(try schema(run, project: project, baseline: baseline))))
    }

    func schema(_ run: RunRecord, project: Project, baseline: RunRecord?) throws -> Components.Schemas.Run {
        .init(
            id: run.id, project: .init(id: project.id, slug: project.slug), externalRunId: run.externalRunId,
            branch: run.branch, commit: run.commit, buildUrl: run.buildURL, status: .closed, startedAt: run.startedAt,
            finishedAt: run.finishedAt, env: .init(additionalProperties: run.env), totals: .init(run.totals),
            regression: try .init(run.regression, baseline: baseline),
            casesUrl: "\(deps.ingest.publicURL.value)/v1/runs/\(run.id)/cases", kenshoReportUrl: reportURL(run.id),
            createdAt: run.createdAt)
    }

    func listRunCases(_ input: Operations.ListRunCases.Input) async throws -> Operations.ListRunCases.Output {
        let page = try await casePage(
            runID: input.path.runId, status: input.query.status.map { CaseStatus(rawValue: $0.rawValue) ?? .passed },
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
        runID: String, status: CaseStatus?, bucket: RegressionBucket?, onlyRegressed: Bool, cursor: String?, limit: Int?
    ) async throws -> Components.Schemas.CaseResultPage {
        let identity = try RequestIdentity.required()
        let size = try pageSize(limit, default: 1000)
        let after = try cursor.flatMap { try Cursor.decodeNumber($0) } ?? -1
        let (grant, _, run) = try await findRun(identity, id: runID)
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        let rows = try await store.caseResults(
            runID: run.id, status: status, bucket: bucket, onlyRegressed: onlyRegressed, afterOrdinal: Int(after),
            limit: size + 1)
        let items = rows.prefix(size).map(Components.Schemas.CaseResult.init)
        let next: OpenAPIValueContainer =
            rows.count > size ? OpenAPIValueContainer(stringLiteral: Cursor.encode(Int64(rows[size - 1].ordinal))) : nil
        return .init(items: Array(items), nextCursor: next)
    }

    func getRunCase(_ input: Operations.GetRunCase.Input) async throws -> Operations.GetRunCase.Output {
        let identity = try RequestIdentity.required()
        let (grant, project, run) = try await findRun(identity, id: input.path.runId)
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        guard ResourceID.isValid(input.path.caseId, prefix: .testCase),
            let (result, steps) = try await store.caseResult(runID: run.id, caseID: input.path.caseId)
        else { throw APIError.notFound("case '\(input.path.caseId)' not found in run '\(run.id)'") }
        let ids = Array(Set(result.attachments + steps.flatMap(\.attachments))).sorted()
        let attachments = try await store.runAttachments(runID: run.id, ids: ids)
        let history = try await store.caseHistory(caseID: result.caseID, projectID: project.id, branch: run.branch, limit: 20)
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
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        guard let attachment = try await store.runAttachments(runID: run.id, ids: [input.path.attachmentId]).first else {
            throw APIError.notFound("attachment '\(input.path.attachmentId)' not found in run '\(run.id)'")
        }
        let files: FileBlobStore
        switch deps.ingest.blobs {
        case .s3(let bucket):
            let url = bucket.presignedGet(
                sha256: attachment.sha256, filename: attachment.id, expiresSeconds: UploadSigner.urlLifetimeSeconds)
            return .found(.init(headers: .init(location: url)))
        case .filesystem(let store):
            files = store
        }
        guard let handle = FileHandle(forReadingAtPath: files.path(attachment.sha256)) else {
            throw APIError.notFound("attachment '\(input.path.attachmentId)' not found in run '\(run.id)'")
        }
        // Read on demand, 64 KiB per chunk, as the client consumes: memory stays flat for large files.
        let chunks = FileChunks(handle: handle, chunkSize: 64 * 1024)
        let body = HTTPBody(chunks, length: .known(attachment.size), iterationBehavior: .single)
        return .ok(.init(body: .binary(body)))
    }

    func listProjectRuns(_ input: Operations.ListProjectRuns.Input) async throws -> Operations.ListProjectRuns.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 50)
        let before = try input.query.cursor.flatMap { try Cursor.decodeNumber($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
        let runs = try await store.runs(projectID: project.id, branch: input.query.branch, beforeSeq: before, limit: size + 1)
        var items: [Components.Schemas.Run] = []
        var baselines: [String: RunRecord] = [:]
        for run in runs.prefix(size) {
            var baseline: RunRecord?
            if let id = run.baselineRunID {
                baseline = baselines[id] ?? runs.first(where: { $0.id == id })
                if baseline == nil { baseline = try await store.run(id: id) }
                baselines[id] = baseline
            }
            items.append(try schema(run, project: project, baseline: baseline))
        }
        let next: OpenAPIValueContainer =
            runs.count > size ? OpenAPIValueContainer(stringLiteral: Cursor.encode(runs[size - 1].seq)) : nil
        return .ok(.init(body: .json(.init(items: items, nextCursor: next))))
    }

    func pageSize(_ limit: Int?, default value: Int) throws -> Int {
        guard let limit else { return value }
        guard (1...1000).contains(limit) else { throw APIError.invalidParameter("limit", "must be 1–1000") }
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

/// A file read chunk by chunk as it is iterated (so the response applies back-pressure).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>
    let handle: FileHandle
    let chunkSize: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        let chunkSize: Int

        mutating func next() async throws -> ArraySlice<UInt8>? {
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ArraySlice(data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle, chunkSize: chunkSize) }
}
