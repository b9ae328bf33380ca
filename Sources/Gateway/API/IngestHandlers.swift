import Domains
import Foundation
import OpenAPIRuntime
import Storage
import Tenancy

extension KaizenAPI {
    func getKenshoSchema(_ input: Operations.GetKenshoSchema.Input) async throws -> Operations.GetKenshoSchema.Output {
        let payload = try JSONDecoder().decode(
            Operations.GetKenshoSchema.Output.Ok.Body.JsonPayload.self, from: deps.document.kenshoSchema)
        return .ok(.init(body: .json(payload)))
    }

    func initKenshoIngest(_ input: Operations.InitKenshoIngest.Input) async throws -> Operations.InitKenshoIngest.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw APIError.badRequest("expected application/json") }
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
        if !problems.isEmpty { throw APIError.validation(problems) }

        let attachments = declarations.map {
            DeclaredAttachment(id: $0.id, sha256: $0.sha256, size: Int64($0.size), contentType: $0.contentType)
        }
        let (session, stored) = try await deps.registry.withWorkspace(grant) { actor in
            guard let project = try await actor.project(slug: body.projectSlug),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { throw APIError.notFound("project '\(body.projectSlug)' not found") }
            return try await actor.createUploadSession(
                project: project, externalRunId: body.externalRunId, attachments: attachments)
        }
        let expires = Int(Date().timeIntervalSince1970) + UploadSigner.urlLifetimeSeconds
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expires))
        var presigned: [Components.Schemas.PresignedUpload] = []
        var already: [String] = []
        for item in attachments {
            if stored.contains(item.sha256) {
                already.append(item.id)
                continue
            }
            let (url, headers) = uploadTarget(item, uploadID: session.id, workspaceID: grant.workspaceID, expires: expires)
            presigned.append(
                .init(id: item.id, url: url, method: .put, expiresAt: expiresAt,
                      fields: .init(additionalProperties: headers)))
        }
        return .ok(
            .init(body: .json(.init(uploadId: session.id, expiresAt: session.expiresAt, presigned: presigned, alreadyExists: already))))
    }

    /// A presigned PUT for one attachment: Kaizen's own upload endpoint, or the S3 store directly.
    func uploadTarget(_ item: DeclaredAttachment, uploadID: String, workspaceID: String, expires: Int)
        -> (url: String, headers: [String: String])
    {
        switch deps.ingest.blobs {
        case .filesystem:
            let signature = deps.ingest.signer.signature(
                uploadID: uploadID, attachmentID: item.id, workspaceID: workspaceID, expires: expires)
            let url = "\(deps.ingest.publicURL.value)/v1/uploads/\(uploadID)/\(item.id)?workspace=\(workspaceID)&expires=\(expires)&signature=\(signature)"
            return (url, ["Content-Type": "application/octet-stream"])
        case .s3(let store):
            return store.presignedPut(
                sha256: item.sha256, contentType: item.contentType, expiresSeconds: UploadSigner.urlLifetimeSeconds)
        }
    }

    /// The declared attachments of a session whose bytes are stored. With S3 the client uploaded past
    /// Kaizen, so each blob the workspace does not already know is confirmed with a HEAD (size and,
    /// where the store keeps it, checksum) and then recorded for later dedupe.
    func storedAttachments(_ session: UploadSession, store: TenantStore) async throws -> [DeclaredAttachment] {
        switch deps.ingest.blobs {
        case .filesystem(let files):
            return session.attachments.filter { files.exists($0.sha256) }
        case .s3(let bucket):
            let known = try await store.existingBlobs(Array(Set(session.attachments.map(\.sha256))))
            let unknown = Dictionary(
                session.attachments.filter { !known.contains($0.sha256) }.map { ($0.sha256, $0) },
                uniquingKeysWith: { a, _ in a })
            let confirmed = try await withThrowingTaskGroup(of: DeclaredAttachment?.self) { group in
                var found: [DeclaredAttachment] = []
                var pending = unknown.values.makeIterator()
                func next() -> Bool {
                    guard let item = pending.next() else { return false }
                    group.addTask {
                        guard let object = try await bucket.head(sha256: item.sha256), object.size == item.size,
                            object.sha256 == nil || object.sha256 == item.sha256
                        else { return nil }
                        return item
                    }
                    return true
                }
                // At most 16 HEADs in flight: a run may declare thousands of attachments.
                for _ in 0..<16 where !next() { break }
                while let result = try await group.next() {
                    if let result { found.append(result) }
                    _ = next()
                }
                return found
            }
            for item in confirmed {
                try await store.recordBlob(sha256: item.sha256, size: item.size, contentType: item.contentType)
            }
            let stored = known.union(confirmed.map(\.sha256))
            return session.attachments.filter { stored.contains($0.sha256) }
        }
    }

    func uploadAttachment(_ input: Operations.UploadAttachment.Input) async throws -> Operations.UploadAttachment.Output {
        guard case .filesystem(let files) = deps.ingest.blobs else {
            throw APIError.notFound("this server keeps attachments in S3: PUT them to the presigned URL init returned")
        }
        let q = input.query
        let uploadID = input.path.uploadId
        let attachmentID = input.path.attachmentId
        switch deps.ingest.signer.verify(
            uploadID: uploadID, attachmentID: attachmentID, workspaceID: q.workspace, expires: Int(q.expires),
            signature: q.signature, now: Date())
        {
        case .badSignature: throw APIError.unauthorized("the upload URL's signature does not match; request a new one with init")
        case .expired: throw APIError.unauthorized("the upload URL expired; call init again for a fresh one")
        case .valid: break
        }
        guard let workspace = try await deps.cluster.catalog.workspace(id: q.workspace) else {
            throw APIError.notFound("upload session '\(uploadID)' not found")
        }
        let grant = WorkspaceGrant(workspaceID: workspace.id, workspaceSlug: workspace.slug, shardID: workspace.shardID, role: .member)
        let session = try await deps.registry.withWorkspace(grant) { try await $0.uploadSession(id: uploadID) }
        guard let session, let declared = session.attachments.first(where: { $0.id == attachmentID }) else {
            throw APIError.notFound("attachment '\(attachmentID)' is not declared in upload session '\(uploadID)'")
        }
        let body: HTTPBody
        switch input.body {
        case .binary(let bytes): body = bytes
        case .any(let bytes): body = bytes
        }
        do {
            try await files.write(body.map { Array($0) }, sha256: declared.sha256, size: declared.size)
        } catch let error as FileBlobStore.WriteError {
            switch error {
            case .tooLarge(let declared):
                throw APIError.payloadTooLarge(limit: Int(declared))
            case .sizeMismatch(let declared, let received):
                throw APIError.validation(pointer: "", "the body has \(received) bytes but \(declared) were declared at init")
            case .digestMismatch(let declared, let received):
                throw APIError.validation(pointer: "", "the body's sha256 is \(received) but \(declared) was declared at init")
            }
        }
        try await deps.cluster.tenant(workspace.id, shard: workspace.shardID)
            .recordBlob(sha256: declared.sha256, size: declared.size, contentType: declared.contentType)
        return .created(.init(body: .json(.init(id: declared.id, sha256: declared.sha256, size: Int(declared.size)))))
    }

    func finalizeKenshoIngest(_ input: Operations.FinalizeKenshoIngest.Input) async throws
        -> Operations.FinalizeKenshoIngest.Output
    {
        try await deps.ingestActivity.during { try await finalize(input) }
    }

    func finalize(_ input: Operations.FinalizeKenshoIngest.Input) async throws -> Operations.FinalizeKenshoIngest.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let generated) = input.body else { throw APIError.badRequest("expected application/json") }
        let document = PreparsedKensho.current ?? generated
        let validator = deps.ingest.validator
        // Without a usable project slug there is nothing to look up: report every problem now.
        guard let slug = document.project?.slug, Slug.problem(slug) == nil else {
            throw Self.invalid(validator.validate(document, knownAttachments: []))
        }
        let (grant, project) = try await resolveProject(identity, slug: slug, workspace: input.query.workspace)
        try requireWrite(grant)

        return try await deps.registry.withWorkspace(grant) { actor in
            // A re-push of a stored run is answered from storage, whatever became of its upload session.
            if let externalRunId = document.externalRunId,
                let existing = try await actor.tenantStore().run(projectID: project.id, externalRunId: externalRunId)
            {
                let replay = try await actor.replay(existing)
                return .ok(.init(body: .json(try self.finalizeResponse(replay))))
            }
            var uploaded: [DeclaredAttachment] = []
            if let uploadID = document.uploadId {
                guard let session = try await actor.uploadSession(id: uploadID) else {
                    throw APIError.validation(pointer: "/uploadId", "no upload session '\(uploadID)' in this workspace")
                }
                if session.expiresAt < Date() {
                    throw APIError.validation(pointer: "/uploadId", "the upload session expired; push again from init")
                }
                if session.projectID != project.id || session.externalRunId != document.externalRunId {
                    throw APIError.validation(pointer: "/uploadId", "the upload session belongs to another project or externalRunId")
                }
                uploaded = try await self.storedAttachments(session, store: actor.tenantStore())
            }
            let run: ValidatedRun
            switch validator.validate(document, knownAttachments: Set(uploaded.map(\.id))) {
            case .valid(let valid): run = valid
            case let outcome: throw Self.invalid(outcome)
            }
            let referenced = uploaded.filter { run.attachmentIDs.contains($0.id) }
            let outcome = try await actor.finalize(
                project: project, run: run, attachments: referenced, quota: deps.ingest.finalizeQuota)
            return .ok(.init(body: .json(try self.finalizeResponse(outcome))))
        }
    }

    static func invalid(_ outcome: KenshoValidator.Outcome) -> APIError {
        guard case .invalid(let problems, let computed) = outcome else { return .internalError }
        let base = APIError.validation(problems)
        guard case .object(var details) = base.details else { return base }
        if let computed {
            details["computedTotals"] = [
                "passed": .int(computed.passed), "failed": .int(computed.failed), "skipped": .int(computed.skipped),
                "broken": .int(computed.broken), "flaky": .int(computed.flaky),
            ]
        }
        return APIError(status: 422, code: base.code, message: base.message, details: .object(details))
    }

    func finalizeResponse(_ outcome: FinalizeOutcome) throws -> Components.Schemas.FinalizeResponse {
        .init(
            internalRunId: outcome.run.id, kenshoReportUrl: reportURL(outcome.run.id),
            regression: try .init(outcome.run.regression, baseline: outcome.baseline),
            totals: .init(outcome.run.totals), replayed: outcome.replayed)
    }

    func reportURL(_ runID: String) -> String { "\(deps.ingest.publicURL.value)/v1/runs/\(runID)" }
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
