import Domains
import Foundation
import Storage

struct BaselineKey: Hashable {
    let projectID: String
    let branch: String
}

struct Baseline {
    let run: RunRecord
    let statuses: [String: CaseStatus]
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
    /// Sequences finalizes per project: idempotency, the quota, the baseline, the regression and the
    /// write happen for one run at a time, so racing duplicates and consecutive runs of a branch see
    /// each other in order. Different projects proceed in parallel.
    public func finalize(
        project: Project, run: ValidatedRun, attachments: [DeclaredAttachment], quota: RateLimit
    ) async throws -> FinalizeOutcome {
        try await sequenced(key: "project:\(project.id)") { actor in
            if let existing = try await actor.store.run(projectID: project.id, externalRunId: run.externalRunId) {
                return try await actor.replay(existing)
            }
            try actor.takeFinalizeQuota(projectID: project.id, projectSlug: project.slug, quota: quota)

            let baseline = try await actor.baseline(project: project, branch: run.branch)
            let (summary, buckets) = RegressionSummary.compute(run.cases, baseline: baseline?.statuses ?? [:])
            let seq = try await actor.nextRunSequence(projectID: project.id)
            let new = NewRun(
                id: ResourceID.make(.run), projectID: project.id, run: run, baselineRunID: baseline?.run.id,
                regression: summary, buckets: buckets, seq: seq, attachments: attachments,
                knownCaseIDs: actor.caseIDs[project.id] ?? [:])
            let stored: RunRecord
            do {
                let persisted = try await actor.store.persist(new)
                stored = persisted.run
                actor.rememberCaseIDs(persisted.caseIDs, projectID: project.id)
            } catch StorageError.uniqueViolation {
                // Another node stored this externalRunId first: answer with its run.
                actor.forgetRunCaches(projectID: project.id)
                guard let existing = try await actor.store.run(projectID: project.id, externalRunId: run.externalRunId)
                else { throw StorageError.uniqueViolation(constraint: "runs_external_key") }
                return try await actor.replay(existing)
            }
            actor.runSeqs[project.id] = seq
            actor.remember(
                Baseline(run: stored, statuses: Dictionary(run.cases.map { ($0.key, $0.status) }, uniquingKeysWith: { a, _ in a })),
                projectID: project.id)
            return FinalizeOutcome(run: stored, baseline: baseline?.run, replayed: false)
        }
    }

    public func replay(_ existing: RunRecord) async throws -> FinalizeOutcome {
        var baseline: RunRecord?
        if let id = existing.baselineRunID { baseline = try await store.run(id: id) }
        return FinalizeOutcome(run: existing, baseline: baseline, replayed: true)
    }

    func takeFinalizeQuota(projectID: String, projectSlug: String, quota: RateLimit) throws {
        // A rolling window, as documented: at most `perMinute` finalizes in any 60 s, all at once if need be.
        let now = clock()
        let decision = finalizeQuota[projectID, default: SlidingWindowLog()]
            .take(limit: quota.perMinute, windowNanos: 60_000_000_000, nowNanos: now)
        if case .limited(let retryAfter) = decision {
            throw APIError.rateLimited(
                "project '\(projectSlug)' is over its quota of \(quota.perMinute) finalizes in any 60 seconds; retry in \(retryAfter)s",
                retryAfter: retryAfter, details: ["limitPerMinute": .int(quota.perMinute), "project": .string(projectSlug)])
        }
    }

    /// The previous run of the branch, or for a branch's first run the latest run of the default branch.
    func baseline(project: Project, branch: String) async throws -> Baseline? {
        if let cached = baselines[BaselineKey(projectID: project.id, branch: branch)] { return cached }
        var run = try await store.latestRun(projectID: project.id, branch: branch)
        if run == nil && branch != project.defaultBranch {
            if let cached = baselines[BaselineKey(projectID: project.id, branch: project.defaultBranch)] { return cached }
            run = try await store.latestRun(projectID: project.id, branch: project.defaultBranch)
        }
        guard let run else { return nil }
        let loaded = Baseline(run: run, statuses: try await store.caseStatuses(runID: run.id))
        if run.branch == branch { remember(loaded, projectID: project.id) }
        return loaded
    }

    /// At most `maxCachedCaseIDs` ids per workspace (about 100 bytes each): a workspace over it keeps
    /// only the latest project's, and the others look theirs up again in their next transaction.
    static let maxCachedCaseIDs = 250_000

    func rememberCaseIDs(_ ids: [String: String], projectID: String) {
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
        if baselines.count >= 32, let victim = baselines.keys.first { baselines[victim] = nil }
        baselines[BaselineKey(projectID: projectID, branch: baseline.run.branch)] = baseline
    }

    func nextRunSequence(projectID: String) async throws -> Int64 {
        if let last = runSeqs[projectID] { return last + 1 }
        let stored = try await store.maxRunSequence(projectID: projectID)
        runSeqs[projectID] = stored
        return stored + 1
    }

    func forgetRunCaches(projectID: String) {
        runSeqs[projectID] = nil
        baselines = baselines.filter { $0.key.projectID != projectID }
    }

    // MARK: uploads

    /// Creates (and persists) an upload session; `stored` are the declared attachments already in the blob store.
    public func createUploadSession(
        project: Project, externalRunId: String, attachments: [DeclaredAttachment], now: Date = Date()
    ) async throws -> (session: UploadSession, alreadyStored: Set<String>) {
        let existing = try await store.existingBlobs(Array(Set(attachments.map(\.sha256))))
        let session = UploadSession(
            id: ResourceID.make(.upload), workspaceID: workspaceID, projectID: project.id, externalRunId: externalRunId,
            attachments: attachments, expiresAt: now.addingTimeInterval(TimeInterval(UploadSigner.sessionLifetimeSeconds)))
        try await store.createUploadSession(session)
        uploadSessions[session.id] = session
        return (session, existing)
    }

    /// The session from the cache, else from the shard (after a restart or on another node).
    public func uploadSession(id: String) async throws -> UploadSession? {
        if let cached = uploadSessions[id] { return cached }
        guard let loaded = try await store.uploadSession(id: id) else { return nil }
        uploadSessions[id] = loaded
        return loaded
    }

    public func tenantStore() -> TenantStore { store }

    // MARK: reads

    static let cachedRuns = 256

    /// A run of this workspace, from the cache or the shard.
    public func run(id: String) async throws -> RunRecord? {
        if let cached = runs[id] { return cached }
        guard let loaded = try await store.run(id: id) else { return nil }
        if runs[id] == nil {
            if runOrder.count >= Self.cachedRuns { runs[runOrder.removeFirst()] = nil }
            runs[id] = loaded
            runOrder.append(id)
        }
        return loaded
    }
}
