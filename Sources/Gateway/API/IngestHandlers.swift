import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func getKenshoSchema(_ input: Operations.GetKenshoSchema.Input) async throws -> Operations.GetKenshoSchema.Output {
        let payload = try JSONDecoder().decode(
            Operations.GetKenshoSchema.Output.Ok.Body.JsonPayload.self, from: deps.document.kenshoSchema)
        return .ok(.init(body: .json(payload)))
    }

    func initKenshoIngest(_ input: Operations.InitKenshoIngest.Input) async throws -> Operations.InitKenshoIngest.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let grant = try targetGrant(identity, workspace: body.workspaceSlug, pointer: "/workspaceSlug")
        try requireWrite(grant)

        var problems: [FieldProblem] = []
        if body.externalRunId.isEmpty || body.externalRunId.unicodeScalars.count > 255 {
            problems.append(.init(pointer: "/externalRunId", message: "must be 1–255 characters"))
        }
        let declarations = body.attachments ?? []
        if declarations.count > 10_000 {
            problems.append(.init(pointer: "/attachments", message: "at most 10000 attachments per run"))
        }
        var seen: Set<String> = []
        for (index, item) in declarations.enumerated() {
            let at = "/attachments/\(index)"
            if !AttachmentID.isValid(item.id) {
                problems.append(.init(pointer: "\(at)/id", message: AttachmentID.rule))
            } else if !seen.insert(item.id).inserted {
                problems.append(.init(pointer: "\(at)/id", message: "is declared twice"))
            }
            if !AttachmentID.isSHA256(item.sha256) {
                problems.append(.init(pointer: "\(at)/sha256", message: "must be 64 lower-case hex digits"))
            }
            if item.size < 0 || Int64(item.size) > deps.ingest.maxAttachmentBytes {
                problems.append(.init(pointer: "\(at)/size", message: "must be 0–\(deps.ingest.maxAttachmentBytes) bytes"))
            }
            if item.contentType.isEmpty || item.contentType.unicodeScalars.count > 255 {
                problems.append(.init(pointer: "\(at)/contentType", message: "must be 1–255 characters"))
            }
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }

        let attachments = declarations.map {
            DeclaredAttachment(id: $0.id, sha256: $0.sha256, size: Int64($0.size), contentType: $0.contentType)
        }
        let expires = Int(Date().timeIntervalSince1970) + UploadSigner.urlLifetimeSeconds
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expires))
        let (session, stored, targets) = try await deps.registry.withWorkspace(grant) { actor in
            guard let project = try await actor.project(slug: body.projectSlug),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { throw DomainError.notFound("project '\(body.projectSlug)' not found") }
            let (session, stored) = try await actor.createUploadSession(
                project: project, externalRunId: body.externalRunId, attachments: attachments)
            let targets = attachments.map { actor.uploadTarget(for: $0, expiresSeconds: UploadSigner.urlLifetimeSeconds) }
            return (session, stored, targets)
        }
        var presigned: [Components.Schemas.PresignedUpload] = []
        var already: [String] = []
        for (item, target) in zip(attachments, targets) {
            if stored.contains(item.sha256) {
                already.append(item.id)
                continue
            }
            let (url, headers) = uploadURL(target, item, uploadID: session.id, workspaceID: grant.workspaceID, expires: expires)
            presigned.append(
                .init(id: item.id, url: url, method: .put, expiresAt: expiresAt,
                      fields: .init(additionalProperties: headers)))
        }
        return .ok(
            .init(body: .json(.init(uploadId: session.id, expiresAt: session.expiresAt, presigned: presigned, alreadyExists: already))))
    }

    /// The URL a client PUTs one attachment to: Kaizen's own upload endpoint (signed here), or the store's.
    func uploadURL(_ target: UploadTarget, _ item: DeclaredAttachment, uploadID: String, workspaceID: String, expires: Int)
        -> (url: String, headers: [String: String])
    {
        switch target {
        case .kaizen:
            let signature = deps.ingest.signer.signature(
                uploadID: uploadID, attachmentID: item.id, workspaceID: workspaceID, expires: expires)
            let url = "\(deps.ingest.publicURL.value)/v1/uploads/\(uploadID)/\(item.id)?workspace=\(workspaceID)&expires=\(expires)&signature=\(signature)"
            return (url, ["Content-Type": "application/octet-stream"])
        case .direct(let url, let headers):
            return (url, headers)
        }
    }

    func uploadAttachment(_ input: Operations.UploadAttachment.Input) async throws -> Operations.UploadAttachment.Output {
        guard deps.registry.receivesUploads else {
            throw DomainError.notFound("this server keeps attachments in S3: PUT them to the presigned URL init returned")
        }
        let q = input.query
        let uploadID = input.path.uploadId
        let attachmentID = input.path.attachmentId
        switch deps.ingest.signer.verify(
            uploadID: uploadID, attachmentID: attachmentID, workspaceID: q.workspace, expires: Int(q.expires),
            signature: q.signature, now: Date())
        {
        case .badSignature: throw DomainError.unauthorized("the upload URL's signature does not match; request a new one with init")
        case .expired: throw DomainError.unauthorized("the upload URL expired; call init again for a fresh one")
        case .valid: break
        }
        guard let workspace = try await deps.directory.workspace(id: q.workspace) else {
            throw DomainError.notFound("upload session '\(uploadID)' not found")
        }
        let body: HTTPBody
        switch input.body {
        case .binary(let bytes): body = bytes
        case .any(let bytes): body = bytes
        }
        let declared = try await deps.registry.withWorkspace(id: workspace.id, shardID: workspace.shardID) {
            try await $0.receiveAttachment(uploadID: uploadID, attachmentID: attachmentID, body: body)
        }
        return .created(.init(body: .json(.init(id: declared.id, sha256: declared.sha256, size: Int(declared.size)))))
    }

    func finalizeKenshoIngest(_ input: Operations.FinalizeKenshoIngest.Input) async throws
        -> Operations.FinalizeKenshoIngest.Output
    {
        try await deps.ingestActivity.during { try await finalize(input) }
    }

    func finalize(_ input: Operations.FinalizeKenshoIngest.Input) async throws -> Operations.FinalizeKenshoIngest.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let generated) = input.body else { throw DomainError.badRequest("expected application/json") }
        let document = PreparsedKensho.current ?? generated
        let validator = deps.ingest.validator
        // Without a usable project slug there is nothing to look up: report every problem now.
        guard let slug = document.project?.slug, Slug.problem(slug) == nil else {
            throw validator.validate(document, knownAttachments: []).error ?? .internalError
        }
        let (grant, project) = try await resolveProject(identity, slug: slug, workspace: input.query.workspace)
        try requireWrite(grant)

        let outcome = try await deps.registry.withWorkspace(grant) {
            try await $0.finalize(
                project: project, document: document, validator: validator, quota: deps.ingest.finalizeQuota,
                shardTimeoutSeconds: deps.ingest.shardTimeoutSeconds)
        }
        return .ok(.init(body: .json(try self.finalizeResponse(outcome))))
    }

    func finalizeResponse(_ outcome: FinalizeOutcome) throws -> Components.Schemas.FinalizeResponse {
        .init(
            internalRunId: outcome.run.id, kenshoReportUrl: reportURL(outcome.run.id),
            regression: try .init(outcome.run.regression, baseline: outcome.baseline),
            totals: .init(outcome.run.totals), gate: .init(outcome.run.gate), replayed: outcome.replayed,
            status: .init(rawValue: outcome.run.status) ?? .closed,
            shards: outcome.run.shards.map { .init(total: $0.total, received: $0.received) })
    }

    /// The run's page (the JSON is at `/v1/runs/{id}`).
    func reportURL(_ runID: String) -> String { "\(deps.ingest.publicURL.value)/runs/\(runID)" }
}

extension Components.Schemas.Totals {
    init(_ totals: RunTotals) {
        self.init(
            passed: totals.passed, failed: totals.failed, skipped: totals.skipped, broken: totals.broken,
            flaky: totals.flaky)
    }
}

extension Components.Schemas.Regression {
    init(_ summary: RegressionSummary, baseline: RunRecord?) throws {
        let ref: OpenAPIValueContainer =
            try baseline.map {
                try OpenAPIValueContainer(unvalidatedValue: ["id": $0.id, "externalRunId": $0.externalRunId, "branch": $0.branch])
            } ?? nil
        self.init(newFailures: summary.newFailures, fixed: summary.fixed, stillFailing: summary.stillFailing, baseline: ref)
    }
}
