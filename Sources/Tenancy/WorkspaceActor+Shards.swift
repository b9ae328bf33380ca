import Crypto
import Domains

/// Sharded runs: a build split over parallel jobs pushes one document per job with the same externalRunId and
/// `shard: {index, total}`. Shards are stored side by side; the one that completes the run closes it in the
/// project's lane — assembly, regression against the baseline, the gate — so the run's verdict is computed
/// once, over the whole run, and answered to that finalize.
extension WorkspaceActor {
    /// How long an open run waits for its next shard before it is closed as partial, by default: 2 hours.
    public static let defaultShardTimeoutSeconds = 7_200

    /// Stores one shard; closes the run when it was the last to arrive.
    ///
    /// Shards are not sequenced: they change no in-process state but the quota and the case-id cache (taken
    /// and updated on the actor, briefly), and storage orders what must be ordered (the run row's counters).
    /// So the parts of a build write at the same time, as one document's cases would. Only the close — which
    /// takes the run's sequence number and baseline — goes through the project's lane.
    nonisolated func finalizeShard(
        project: Project, run: ValidatedRun, shard: RunShard, attachments: [DeclaredAttachment], quota: RateLimit,
        timeoutSeconds: Int
    ) async throws -> FinalizeOutcome {
        let digests = CaseKeyDigest.of(run.cases.lazy.map { $0.key })
        let content = Self.contentDigest(run)
        let known = try await admitShard(project: project, quota: quota)
        let baseline = try await baseline(project: project, branch: run.branch)
        let (_, buckets) = RegressionSummary.compute(run.cases, digests: digests, baseline: baseline?.statuses ?? [:])
        let new = NewShard(
            runID: ResourceID.make(.run), projectID: project.id, run: run, shard: shard, digest: content, attachments: attachments,
            knownCaseIDs: known, keyDigests: digests, buckets: buckets, timeoutSeconds: timeoutSeconds)
        let stored: StoredShard
        do {
            stored = try await repos.runs.persistShard(new)
        } catch let error as DomainError where error.isUniqueViolation {
            // The same shard sent twice at once: the other copy is stored now; this one replays (or conflicts).
            stored = try await repos.runs.persistShard(new)
        }
        switch stored {
        case .replayed(let record):
            // Every shard arrived but the close did not happen (the node stopped in between): close it now.
            if record.isOpen, let shards = record.shards, shards.received >= shards.total {
                return try await sequenced(key: "project:\(project.id)") { actor in
                    try await actor.closeSharded(project: project, runID: record.id, partial: false)
                }
            }
            return try await replay(record)
        case .stored(let record, let caseIDs):
            // Merged, not replaced: the run's other shards, stored beside this one, added theirs.
            await mergeCaseIDs(caseIDs, projectID: project.id)
            if let arrival = record.shards?.received {
                await rememberShardPart(ShardPart(run: run, shard: shard, arrival: arrival, buckets: buckets), runID: record.id)
            }
            if let shards = record.shards, shards.received >= shards.total {
                return try await sequenced(key: "project:\(project.id)") { actor in
                    try await actor.closeSharded(project: project, runID: record.id, partial: false)
                }
            }
            return FinalizeOutcome(run: record, baseline: nil, replayed: false)
        }
    }

    /// Keeps what the close needs of a stored shard, within `maxShardCases` for the whole workspace (beyond it the
    /// close reads the run back from storage).
    func rememberShardPart(_ part: ShardPart, runID: String) {
        let held = shardParts.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } }
        guard held + part.count <= Self.maxShardCases else { return }
        shardParts[runID, default: [:]][part.index] = part
    }

    /// Cases of open sharded runs held in memory per workspace (about 100 bytes each).
    static let maxShardCases = 400_000

    /// Adds a shard's ids to the project's cache (taken out first, so the merge does not copy it).
    func mergeCaseIDs(_ ids: CaseIDMap, projectID: String) {
        var merged = caseIDs.removeValue(forKey: projectID) ?? CaseIDMap()
        merged.merge(ids)
        rememberCaseIDs(merged, projectID: projectID)
    }

    /// Takes a finalize from the project's quota and hands out the case ids cached for it.
    func admitShard(project: Project, quota: RateLimit) throws -> CaseIDMap {
        try takeFinalizeQuota(projectID: project.id, projectSlug: project.slug, quota: quota)
        return caseIDs[project.id] ?? CaseIDMap()
    }

    /// Closes `runID` as partial if it is still open and waited past its deadline for a shard (the close-check
    /// job's use case). Returns the closed run, or nil when there was nothing to close.
    public nonisolated func closeIfStale(runID: String) async throws -> RunRecord? {
        guard let stale = try await repos.runs.staleOpenRun(runID: runID),
            let project = try await project(id: stale.projectID)
        else { return nil }
        return try await sequenced(key: "project:\(project.id)") { actor in
            // Checked again in the lane: a shard may have arrived (and moved the deadline) meanwhile.
            guard let still = try await actor.repos.runs.staleOpenRun(runID: runID) else { return nil }
            let complete = still.shards.map { $0.received >= $0.total } ?? true
            let outcome = try await actor.closeSharded(project: project, runID: runID, partial: !complete)
            return outcome.run
        }
    }

    /// In the project's lane: assembles the run's results, computes its regression and gate, and closes it.
    func closeSharded(project: Project, runID: String, partial: Bool) async throws -> FinalizeOutcome {
        guard let record = try await repos.runs.run(id: runID) else {
            throw DomainError.notFound("run '\(runID)' not found")
        }
        let started = clock()
        // The shards this node stored are in memory; when every stored one is, the run is not read back.
        let rows: [ShardedResult]
        if let parts = shardParts.removeValue(forKey: runID), Set(parts.values.map(\.arrival)) == Set(1...max(1, record.shards?.received ?? 0)) {
            rows = parts.values.flatMap { $0.results }
        } else {
            rows = try await repos.runs.shardedResults(runID: runID)
        }
        let read = clock()
        let assembly = ShardAssembly.assemble(rows)
        let digests = CaseKeyDigest.of(assembly.results.lazy.map(\.key))
        let assembled = clock()
        let retried = assembly.results.filter { $0.flaky && $0.status == .passed }.map(\.key)
        let (gate, context) = try await repos.ci.gateInputs(projectID: project.id, flakyKeys: retried)
        let judged = clock()
        defer {
            logger.debug(
                "sharded run closed",
                metadata: [
                    "run": "\(runID)", "cases": "\(rows.count)", "readMs": "\((read - started) / 1_000_000)",
                    "assembleMs": "\((assembled - read) / 1_000_000)", "gateInputsMs": "\((judged - assembled) / 1_000_000)",
                    "totalMs": "\((clock() - started) / 1_000_000)",
                ])
        }
        var attempt = 0
        while true {
            attempt += 1
            let seq = try await nextRunSequence(projectID: project.id)
            let baseline = try await baseline(project: project, branch: record.branch)
            let (summary, buckets) = RegressionSummary.compute(
                statuses: assembly.results.lazy.map(\.status), digests: digests, baseline: baseline?.statuses ?? [:])
            let verdict = QualityGate.evaluate(
                gate, branch: record.branch, startedAt: record.startedAt, finishedAt: record.finishedAt,
                cases: assembly.results, buckets: buckets, context: context)
            let closing = ClosingRun(
                runID: runID, projectID: project.id, branch: record.branch, seq: seq, baselineRunID: baseline?.run.id,
                assembly: assembly, regression: summary, buckets: buckets, gate: verdict, partial: partial)
            do {
                guard let closed = try await repos.runs.closeShardedRun(closing) else {
                    // Another node closed it first: answer with what it stored.
                    forgetRunCaches(projectID: project.id)
                    guard let now = try await repos.runs.run(id: runID) else { throw DomainError.notFound("run '\(runID)' not found") }
                    return try await replay(now)
                }
                runSeqs[project.id] = seq
                remember(
                    Baseline(
                        run: closed,
                        statuses: Dictionary(zip(digests, assembly.results.lazy.map(\.status)), uniquingKeysWith: { a, _ in a })),
                    projectID: project.id)
                return FinalizeOutcome(run: closed, baseline: baseline?.run, replayed: false)
            } catch let error as DomainError where error.isUniqueViolation {
                forgetRunCaches(projectID: project.id)
                if error.details["constraint"] == .string(Self.runSequenceConstraint), attempt < 16 { continue }
                throw error
            }
        }
    }

    /// What makes a shard the same shard when re-sent: its cases' keys, outcomes, durations and errors, in order,
    /// and the run's branch and commit. (Not the upload session, which a re-send may renew.)
    static func contentDigest(_ run: ValidatedRun) -> String {
        var hasher = SHA256()
        func add(_ text: String?) {
            var bytes = Array((text ?? "\u{0}").utf8)
            withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { bytes.insert(contentsOf: $0, at: 0) }
            hasher.update(data: bytes)
        }
        add(run.branch)
        add(run.commit)
        for item in run.cases {
            add(item.key)
            add(item.status.rawValue)
            add(String(item.durationMs))
            add(String(item.attempts))
            add(item.flaky ? "1" : "0")
            add(item.error?.type)
            add(item.error?.message)
            add(String(item.steps.count))
        }
        return Hex.string(hasher.finalize())
    }
}

/// What closing a run needs of one of its shards, kept from its finalize: the cases' keys, names, suites and
/// outcomes, in the shard's order, and where the shard stands among the run's.
struct ShardPart: Sendable {
    let index: Int
    let arrival: Int
    let results: [ShardedResult]
    var count: Int { results.count }

    init(run: ValidatedRun, shard: RunShard, arrival: Int, buckets: [RegressionBucket?]) {
        index = shard.index
        self.arrival = arrival
        let base = shard.index * RunShard.ordinalStride
        // A case's key names it exactly as its inventory id does, so the key stands for the id here.
        results = run.cases.enumerated().map { i, item in
            ShardedResult(
                ordinal: base + i, caseID: item.key, key: item.key, name: item.name, suite: item.suite, status: item.status,
                durationMs: item.durationMs, attempts: item.attempts, flaky: item.flaky, arrival: arrival,
                storedBucket: i < buckets.count ? buckets[i] : nil)
        }
    }
}
