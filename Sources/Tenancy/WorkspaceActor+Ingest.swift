import Domains
import Foundation

struct BaselineKey: Hashable {
    let projectID: String
    let branch: String
}

struct Baseline {
    let run: RunRecord
    /// By case key digest.
    let statuses: [CaseKeyDigest: CaseStatus]
}

/// What a finalize answers.
public struct FinalizeOutcome: Sendable {
    public let run: RunRecord
    /// The run compared with; nil when the project had no run to compare with.
    public let baseline: RunRecord?
    /// True when the run was already stored (a re-push) and nothing was written.
    public let replayed: Bool
}

extension WorkspaceActor {
    // MARK: finalize (a sequenced write per project)

    /// Finalizes a pushed run of `project`: a re-push of a stored run is answered from storage; otherwise the
    /// upload session (if any) is checked, its stored attachments confirmed, the document validated, and the run
    /// written in the project's lane.
    public func finalize(
        project: Project, document: KenshoRun, validator: KenshoValidator, quota: RateLimit, now: Date = Date(),
        shardTimeoutSeconds: Int = WorkspaceActor.defaultShardTimeoutSeconds
    ) async throws -> FinalizeOutcome {
        // Whoever watches the project's live stream sees the push's phases, and how it ended.
        var progress = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .validating)
        progress.externalRunId = document.externalRunId
        progress.uploadId = document.uploadId
        progress.cases = document.cases?.count
        live?.publish(progress)
        do {
            let outcome = try await finalizeDocument(
                project: project, document: document, validator: validator, quota: quota, now: now,
                shardTimeoutSeconds: shardTimeoutSeconds)
            var done = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .finalized)
            done.externalRunId = outcome.run.externalRunId
            done.runId = outcome.run.id
            done.cases = progress.cases
            done.status = outcome.run.isOpen ? "open" : (outcome.run.totals.failed + outcome.run.totals.broken > 0 ? "failed" : "passed")
            live?.publish(done)
            return outcome
        } catch {
            var failed = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .failed)
            failed.externalRunId = document.externalRunId
            failed.uploadId = document.uploadId
            failed.message = (error as? DomainError)?.message ?? "the push could not be stored"
            live?.publish(failed)
            throw error
        }
    }

    func finalizeDocument(
        project: Project, document: KenshoRun, validator: KenshoValidator, quota: RateLimit, now: Date,
        shardTimeoutSeconds: Int
    ) async throws -> FinalizeOutcome {
        // A re-push of a stored run is answered from storage, whatever became of its upload session. (A shard is
        // checked against its own stored shard, in the lane.)
        if document.shard == nil, let externalRunId = document.externalRunId,
            let existing = try await repos.runs.run(projectID: project.id, externalRunId: externalRunId)
        {
            return try await replayWhole(existing)
        }
        var uploaded: [DeclaredAttachment] = []
        if let uploadID = document.uploadId {
            guard let session = try await uploadSession(id: uploadID) else {
                throw DomainError.validation(pointer: "/uploadId", "no upload session '\(uploadID)' in this workspace")
            }
            if session.expiresAt < now {
                throw DomainError.validation(pointer: "/uploadId", "the upload session expired; push again from init")
            }
            if session.projectID != project.id || session.externalRunId != document.externalRunId {
                throw DomainError.validation(pointer: "/uploadId", "the upload session belongs to another project or externalRunId")
            }
            uploaded = try await storedAttachments(session)
        }
        let validating = ContinuousClock.now
        let outcome = validator.validate(document, knownAttachments: Set(uploaded.map(\.id)))
        guard case .valid(let run) = outcome else { throw outcome.error ?? .internalError }
        logger.debug(
            "kensho document validated",
            metadata: ["cases": "\(run.cases.count)", "validateMs": "\(milliseconds(ContinuousClock.now - validating))"])
        let referenced = uploaded.filter { run.attachmentIDs.contains($0.id) }
        var storing = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .storing)
        storing.externalRunId = run.externalRunId
        storing.cases = run.cases.count
        live?.publish(storing)
        if let shard = run.shard {
            return try await finalizeShard(
                project: project, run: run, shard: shard, attachments: referenced, quota: quota, timeoutSeconds: shardTimeoutSeconds)
        }
        return try await finalize(project: project, run: run, attachments: referenced, quota: quota)
    }

    /// The declared attachments of a session whose bytes are stored. Blobs the workspace has not recorded yet
    /// are confirmed with the store (a client may upload past Kaizen) and then recorded, for later dedupe.
    nonisolated func storedAttachments(_ session: UploadSession) async throws -> [DeclaredAttachment] {
        let known = try await repos.uploads.existingBlobs(Array(Set(session.attachments.map(\.sha256))))
        var unknown: [String: DeclaredAttachment] = [:]
        for item in session.attachments where !known.contains(item.sha256) { unknown[item.sha256] = unknown[item.sha256] ?? item }
        let confirmed = try await blobs.confirm(Array(unknown.values))
        for item in confirmed {
            try await repos.uploads.recordBlob(sha256: item.sha256, size: item.size, contentType: item.contentType)
        }
        let stored = known.union(confirmed.map(\.sha256))
        return session.attachments.filter { stored.contains($0.sha256) }
    }

    /// Sequences finalizes per project: idempotency, the quota, the baseline, the regression and the
    /// write happen for one run at a time, so racing duplicates and consecutive runs of a branch see
    /// each other in order. Different projects proceed in parallel.
    ///
    /// One sequencing mechanism, the project's run sequence number: the lane orders this node's finalizes
    /// (so they never collide), a unique (project, seq) constraint orders every node's, and roll-ups follow
    /// the same numbers. When another node took the number first, everything cached about the project
    /// may be stale: it is reloaded and the run computed again, exactly as a sequential replay would.
    public nonisolated func finalize(
        project: Project, run: ValidatedRun, attachments: [DeclaredAttachment], quota: RateLimit
    ) async throws -> FinalizeOutcome {
        // Where the time goes, for the debug log (as the roll-up's).
        let clock = ContinuousClock()
        let started = clock.now
        // Before the lane: digesting 100,000 keys is work no other finalize of the project need wait for.
        let digests = CaseKeyDigest.of(run.cases.lazy.map { $0.key })
        let digested = clock.now
        // The gate and the quarantine are not sequenced state: read before the lane, like the digests.
        let gateInputs = try await gateInputs(project: project, run: run)
        let gated = clock.now
        // Outside the lane: a finalize waiting for the project's roll-ups holds nothing another needs.
        try await awaitRollUps(projectID: project.id)
        let queued = clock.now
        let logger = self.logger
        return try await sequenced(key: "project:\(project.id)") { actor in
            let entered = clock.now
            if let existing = try await actor.repos.runs.run(projectID: project.id, externalRunId: run.externalRunId) {
                return try await actor.replayWhole(existing)
            }
            try actor.takeFinalizeQuota(projectID: project.id, projectSlug: project.slug, quota: quota)
            var attempt = 0
            while true {
                attempt += 1
                // The sequence number before the baseline: a run another node stores after the number was
                // read takes that number or a later one, so this insert conflicts and goes again with both
                // reloaded. Read the other way round (baseline, then number from the database), a run landing
                // in between became the number's predecessor without being the baseline.
                let seq = try await actor.nextRunSequence(projectID: project.id)
                let baseline = try await actor.baseline(project: project, branch: run.branch)
                let baselined = clock.now
                let (summary, buckets) = RegressionSummary.compute(run.cases, digests: digests, baseline: baseline?.statuses ?? [:])
                let compared = clock.now
                let new = NewRun(
                    id: ResourceID.make(.run), projectID: project.id, run: run, baselineRunID: baseline?.run.id,
                    regression: summary, buckets: buckets, seq: seq, attachments: attachments,
                    knownCaseIDs: actor.caseIDs[project.id] ?? CaseIDMap(), keyDigests: digests,
                    gate: QualityGate.evaluate(gateInputs.gate, run: run, buckets: buckets, context: gateInputs.context))
                let stored: RunRecord
                do {
                    let persisted = try await actor.repos.runs.persist(new)
                    stored = persisted.run
                    actor.rememberCaseIDs(persisted.caseIDs, projectID: project.id)
                } catch let error as DomainError where error.isUniqueViolation {
                    actor.forgetRunCaches(projectID: project.id)
                    // Another node stored this externalRunId first: answer with its run.
                    if let existing = try await actor.repos.runs.run(projectID: project.id, externalRunId: run.externalRunId) {
                        return try await actor.replayWhole(existing)
                    }
                    // Another node stored a run of this project with this sequence number: go again, fresh.
                    // (Each retry means another node made progress, so a bound is only a safety net.)
                    if error.details["constraint"] == .string(Self.runSequenceConstraint), attempt < 16 { continue }
                    throw error
                }
                let persisted = clock.now
                actor.runSeqs[project.id] = seq
                actor.remember(
                    Baseline(run: stored, statuses: Dictionary(zip(digests, run.cases.lazy.map(\.status)), uniquingKeysWith: { a, _ in a })),
                    projectID: project.id)
                logger.debug(
                    "finalize phases",
                    metadata: [
                        "cases": "\(run.cases.count)", "digestMs": "\(milliseconds(digested - started))",
                        "gateMs": "\(milliseconds(gated - digested))", "backlogMs": "\(milliseconds(queued - gated))",
                        "laneMs": "\(milliseconds(entered - queued))", "baselineMs": "\(milliseconds(baselined - entered))",
                        "regressionMs": "\(milliseconds(compared - baselined))", "persistMs": "\(milliseconds(persisted - compared))",
                        "rememberMs": "\(milliseconds(clock.now - persisted))",
                    ])
                return FinalizeOutcome(run: stored, baseline: baseline?.run, replayed: false)
            }
        }
    }

    /// Waits while the project's roll-ups are behind by the policy (`RollUpBackpressure`: that many runs waiting for
    /// their roll-up, or the oldest of them finalized that long ago), at most `maxWaitSeconds`. Polls the partial
    /// index of runs not rolled up, at 20 ms and then less often (a roll-up takes tenths of a second to seconds).
    nonisolated func awaitRollUps(projectID: String) async throws {
        let policy = rollUpBackpressure
        guard !policy.isOff else { return }
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(policy.maxWaitSeconds * 1000))
        var pause = Duration.milliseconds(20)
        var waited = false
        while policy.holdsBack(try await repos.runs.rollUpBacklog(projectID: projectID)) {
            guard clock.now < deadline else {
                logger.warning(
                    "finalize goes on although the project's roll-ups are behind",
                    metadata: ["project": "\(projectID)", "waitedSeconds": "\(policy.maxWaitSeconds)"])
                return
            }
            waited = true
            try await Task.sleep(for: min(pause, deadline - clock.now))
            pause = min(pause * 2, .milliseconds(200))
        }
        if waited { logger.debug("finalize waited for the project's roll-ups", metadata: ["project": "\(projectID)"]) }
    }

    /// The unique constraint on (workspace, project, seq) of runs.
    static let runSequenceConstraint = "runs_seq_key"

    /// A whole document re-pushed: replayed, unless its externalRunId names a run pushed in shards.
    func replayWhole(_ existing: RunRecord) async throws -> FinalizeOutcome {
        if let shards = existing.shards {
            throw DomainError.conflict(
                "externalRunId '\(existing.externalRunId)' is a run pushed in \(shards.total) shards; push each part with its shard",
                details: ["pointer": .string("/shard"), "runId": .string(existing.id)])
        }
        return try await replay(existing)
    }

    public func replay(_ existing: RunRecord) async throws -> FinalizeOutcome {
        var baseline: RunRecord?
        if let id = existing.baselineRunID { baseline = try await run(id: id) }
        return FinalizeOutcome(run: existing, baseline: baseline, replayed: true)
    }

    func takeFinalizeQuota(projectID: String, projectSlug: String, quota: RateLimit) throws {
        // A rolling window, as documented: at most `perMinute` finalizes in any 60 s, all at once if need be.
        let now = clock()
        let decision = finalizeQuota[projectID, default: SlidingWindowLog()]
            .take(limit: quota.perMinute, windowNanos: 60_000_000_000, nowNanos: now)
        if case .limited(let retryAfter) = decision {
            throw DomainError.rateLimited(
                "project '\(projectSlug)' is over its quota of \(quota.perMinute) finalizes in any 60 seconds; retry in \(retryAfter)s",
                retryAfter: retryAfter, details: ["limitPerMinute": .int(quota.perMinute), "project": .string(projectSlug)])
        }
    }

    /// The previous run of the branch, or for a branch's first run the latest run of the default branch.
    func baseline(project: Project, branch: String) async throws -> Baseline? {
        if let cached = baselines[BaselineKey(projectID: project.id, branch: branch)] { return cached }
        var run = try await repos.runs.latestRun(projectID: project.id, branch: branch)
        if run == nil && branch != project.defaultBranch {
            if let cached = baselines[BaselineKey(projectID: project.id, branch: project.defaultBranch)] { return cached }
            run = try await repos.runs.latestRun(projectID: project.id, branch: project.defaultBranch)
        }
        guard let run else { return nil }
        let statuses = try await repos.runs.caseStatuses(runID: run.id)
        let loaded = Baseline(run: run, statuses: Dictionary(uniqueKeysWithValues: statuses.lazy.map { (CaseKeyDigest($0.key), $0.value) }))
        if run.branch == branch { remember(loaded, projectID: project.id) }
        return loaded
    }

    /// At most `maxCachedCaseIDs` ids per workspace (about 60 bytes each): a workspace over it keeps
    /// only the latest project's, and the others look theirs up again in their next transaction.
    static let maxCachedCaseIDs = 250_000

    /// Drops the ingest caches (case ids, the baselines' statuses) once no finalize has used them for
    /// `idleNanos`: a quiet workspace gives their memory back (100k cases hold ~7 MB), and its next
    /// finalize reads them again from the shard. They are hints only (ids never change, a baseline is
    /// reloaded whenever it is missing), so dropping them at any moment is safe. Returns whether it did.
    public func coolDown(idleNanos: UInt64) -> Bool {
        guard holdsIngestCaches else { return false }
        let now = clock()
        guard now >= ingestCachesUsedNanos, now - ingestCachesUsedNanos >= idleNanos else { return false }
        caseIDs = [:]
        baselines = [:]
        // Open runs' shards too: a close without them reads the run back (and a run another node closed
        // would otherwise keep its parts here until the actor is evicted).
        shardParts = [:]
        return true
    }

    /// Whether the ingest caches hold anything (for tests and diagnostics).
    public var holdsIngestCaches: Bool { !caseIDs.isEmpty || !baselines.isEmpty || !shardParts.isEmpty }

    func rememberCaseIDs(_ ids: CaseIDMap, projectID: String) {
        ingestCachesUsedNanos = clock()
        guard ids.count <= Self.maxCachedCaseIDs else {
            caseIDs[projectID] = nil
            return
        }
        caseIDs[projectID] = ids
        var total = caseIDs.values.reduce(0) { $0 + $1.count }
        while total > Self.maxCachedCaseIDs, let victim = caseIDs.keys.first(where: { $0 != projectID }) {
            total -= caseIDs[victim]?.count ?? 0
            caseIDs[victim] = nil
        }
    }

    /// Keeps the latest run of a few branches per workspace; the rest reload from the shard.
    func remember(_ baseline: Baseline, projectID: String) {
        ingestCachesUsedNanos = clock()
        if baselines.count >= 32, let victim = baselines.keys.first { baselines[victim] = nil }
        baselines[BaselineKey(projectID: projectID, branch: baseline.run.branch)] = baseline
    }

    func nextRunSequence(projectID: String) async throws -> Int64 {
        if let last = runSeqs[projectID] { return last + 1 }
        let stored = try await repos.runs.maxRunSequence(projectID: projectID)
        runSeqs[projectID] = stored
        return stored + 1
    }

    func forgetRunCaches(projectID: String) {
        runSeqs[projectID] = nil
        baselines = baselines.filter { $0.key.projectID != projectID }
    }

    // MARK: uploads

    /// Creates (and persists) an upload session; `alreadyStored` are the shas the workspace already stores.
    public func createUploadSession(
        project: Project, externalRunId: String, attachments: [DeclaredAttachment], now: Date = Date()
    ) async throws -> (session: UploadSession, alreadyStored: Set<String>) {
        let existing = try await repos.uploads.existingBlobs(Array(Set(attachments.map(\.sha256))))
        let session = UploadSession(
            id: ResourceID.make(.upload), workspaceID: workspaceID, projectID: project.id, externalRunId: externalRunId,
            attachments: attachments, expiresAt: now.addingTimeInterval(TimeInterval(UploadSigner.sessionLifetimeSeconds)))
        try await repos.uploads.createUploadSession(session)
        uploadSessions[session.id] = session
        var progress = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .initialized)
        progress.externalRunId = externalRunId
        progress.uploadId = session.id
        progress.total = attachments.count
        live?.publish(progress)
        return (session, existing)
    }

    /// The session from the cache, else from the shard (after a restart or on another node).
    public func uploadSession(id: String) async throws -> UploadSession? {
        if let cached = uploadSessions[id] { return cached }
        guard let loaded = try await repos.uploads.uploadSession(id: id) else { return nil }
        uploadSessions[id] = loaded
        return loaded
    }

    /// Where a client uploads each attachment.
    public nonisolated func uploadTarget(for attachment: DeclaredAttachment, expiresSeconds: Int) -> UploadTarget {
        blobs.uploadTarget(for: attachment, expiresSeconds: expiresSeconds)
    }

    /// Receives one declared attachment of an upload session sent to Kaizen's endpoint, and records it.
    public func receiveAttachment<Chunks: AsyncSequence & Sendable>(
        uploadID: String, attachmentID: String, body: Chunks
    ) async throws -> DeclaredAttachment where Chunks.Element == ArraySlice<UInt8> {
        guard let session = try await uploadSession(id: uploadID),
            let declared = session.attachments.first(where: { $0.id == attachmentID })
        else {
            throw DomainError.notFound("attachment '\(attachmentID)' is not declared in upload session '\(uploadID)'")
        }
        try await blobs.receive(body, sha256: declared.sha256, size: declared.size)
        try await repos.uploads.recordBlob(sha256: declared.sha256, size: declared.size, contentType: declared.contentType)
        if let live, let project = try await project(id: session.projectID) {
            var progress = IngestProgress(workspaceID: workspaceID, projectID: project.id, project: project.slug, phase: .uploaded)
            progress.externalRunId = session.externalRunId
            progress.uploadId = uploadID
            progress.attachmentId = attachmentID
            progress.total = session.attachments.count
            live.publish(progress)
        }
        return declared
    }

    // MARK: reads

    static let cachedRuns = 256

    /// A run of this workspace, from the cache or the shard.
    public func run(id: String) async throws -> RunRecord? {
        if let cached = runs[id] { return cached }
        guard let loaded = try await repos.runs.run(id: id) else { return nil }
        // An open sharded run still changes; only closed runs are cached.
        if runs[id] == nil && !loaded.isOpen {
            if runOrder.count >= Self.cachedRuns { runs[runOrder.removeFirst()] = nil }
            runs[id] = loaded
            runOrder.append(id)
        }
        return loaded
    }
}
