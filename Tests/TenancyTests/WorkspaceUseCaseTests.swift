import Domains
import Foundation
import KaizenTestSupport
import Synchronization
import Testing

@testable import Tenancy

/// Fast tests of the actor's own logic over an in-memory seam: what it caches, when it reloads, how it
/// retries. The same behaviours against real PostgreSQL (and two real nodes) are in `ServerTests`.
@Suite struct WorkspaceUseCaseTests {
    @Test func aProjectCreatedElsewhereIsFoundOnACacheMiss() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor()
        #expect(try await actor.projects().isEmpty)  // the cache is loaded, and empty
        _ = try await storage.projects.insertProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main", seq: 1, by: nil)
        #expect(try await actor.project(slug: "web")?.slug == "web")
        #expect(try await actor.project(slug: "nope") == nil)
    }

    /// Another node created a project with the next write sequence number: this node's creation takes the one after.
    @Test func aProjectCreationThatLosesTheSequenceRaceTakesTheNextNumber() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor()
        #expect(try await actor.createProject(slug: "one", name: "One", accessMode: .team, defaultBranch: "main").createdSeq == 1)
        _ = try await storage.projects.insertProject(slug: "two", name: "Two", accessMode: .team, defaultBranch: "main", seq: 2, by: nil)
        #expect(try await actor.createProject(slug: "three", name: "Three", accessMode: .team, defaultBranch: "main").createdSeq == 3)
        // A slug taken elsewhere is still a conflict, not a retry.
        _ = try await storage.projects.insertProject(slug: "four", name: "Four", accessMode: .team, defaultBranch: "main", seq: 4, by: nil)
        await #expect {
            _ = try await actor.createProject(slug: "four", name: "Again", accessMode: .team, defaultBranch: "main")
        } throws: { ($0 as? DomainError)?.kind == .conflict && ($0 as? DomainError)?.isUniqueViolation == false }
    }

    /// Another node finalizes a run of the project between this node's cached state and its write: the
    /// sequence number collides, and the finalize is computed again against the other node's run.
    @Test func aFinalizeThatLosesTheSequenceRaceIsRecomputedOnFreshState() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor()
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        let quota = RateLimit(perMinute: 1000)
        let first = try await actor.finalize(project: project, run: try run("r1", ["a": "passed"]), attachments: [], quota: quota)
        #expect(first.run.seq == 1 && first.baseline == nil)

        // "Another node" stores r2 (a failing) with the next sequence number, behind this actor's back.
        let other = try await storage.runs.persist(
            NewRun(
                id: ResourceID.make(.run), projectID: project.id, run: try run("r2", ["a": "failed"]),
                baselineRunID: first.run.id, regression: RegressionSummary(newFailures: 1, fixed: 0, stillFailing: 0),
                buckets: [.newFailure], seq: 2, attachments: []))

        let third = try await actor.finalize(project: project, run: try run("r3", ["a": "passed"]), attachments: [], quota: quota)
        #expect(third.run.seq == 3)
        #expect(third.baseline?.id == other.run.id)
        #expect(third.run.regression.fixed == 1)  // compared with r2, as a sequential replay would
        #expect(storage.runs.conflicts.load(ordering: .relaxed) == 1)
    }

    /// A quiet workspace drops its ingest caches (memory given back) once the idle period has passed, not
    /// before; its next finalize reads the baseline again and answers exactly as with the cache.
    @Test func idleIngestCachesAreDroppedAndReloadedOnTheNextFinalize() async throws {
        let storage = MemoryStorage()
        let now = ManualClock()
        let actor = storage.actor(clock: { now.nanos.load(ordering: .relaxed) })
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        let quota = RateLimit(perMinute: 1000)
        _ = try await actor.finalize(project: project, run: try run("r1", ["a": "passed", "b": "passed"]), attachments: [], quota: quota)
        let second = try await actor.finalize(project: project, run: try run("r2", ["a": "failed", "b": "passed"]), attachments: [], quota: quota)
        #expect(second.run.regression.newFailures == 1)
        let readsWhileCached = storage.runs.statusReads.load(ordering: .relaxed)
        #expect(await actor.holdsIngestCaches)

        let idle: UInt64 = 30_000_000_000
        now.nanos.add(idle - 1, ordering: .relaxed)
        #expect(await actor.coolDown(idleNanos: idle) == false)
        #expect(await actor.holdsIngestCaches)
        now.nanos.add(1, ordering: .relaxed)
        #expect(await actor.coolDown(idleNanos: idle) == true)
        #expect(await actor.holdsIngestCaches == false)
        #expect(await actor.coolDown(idleNanos: idle) == false)  // nothing left to drop

        let third = try await actor.finalize(project: project, run: try run("r3", ["a": "passed", "b": "failed"]), attachments: [], quota: quota)
        #expect(third.baseline?.id == second.run.id)
        #expect(third.run.regression.fixed == 1 && third.run.regression.newFailures == 1)
        #expect(storage.runs.statusReads.load(ordering: .relaxed) == readsWhileCached + 1)  // the baseline was read again
        #expect(await actor.holdsIngestCaches)
    }

    /// With a roll-up backlog limit, a finalize of a project whose roll-ups are that far behind waits, storing
    /// nothing, until one is rolled up; then it is stored as any other.
    @Test func aFinalizeWaitsWhileItsProjectsRollUpsAreBehind() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor(rollUpBackpressure: RollUpBackpressure(maxPending: 2, maxWaitSeconds: 3_600))
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        storage.runs.pending.store(2, ordering: .relaxed)
        let finalize = Task { try await actor.finalize(project: project, run: try run("r1", ["a": "passed"]), attachments: [], quota: RateLimit(perMinute: 1000)) }
        // Waiting: it asks again and again and writes nothing.
        try await waitUntil("the finalize asked three times") { storage.runs.pendingAsked.load(ordering: .relaxed) >= 3 }
        #expect(storage.runs.rows.withLock { $0.isEmpty })
        storage.runs.pending.store(1, ordering: .relaxed)
        let outcome = try await finalize.value
        #expect(outcome.run.seq == 1 && !outcome.replayed)
        #expect(storage.runs.rows.withLock { $0.count } == 1)
    }

    /// With a lag limit, a finalize waits while the project's oldest run waiting for its roll-up is older than the
    /// limit — however few runs wait — and goes on at once while the waiting runs are younger.
    @Test func aFinalizeWaitsWhileItsProjectsOldestPendingRollUpIsTooOld() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor(rollUpBackpressure: RollUpBackpressure(maxLagSeconds: 2, maxWaitSeconds: 3_600))
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        let quota = RateLimit(perMinute: 1000)
        // Five runs waiting, the oldest finalized a second ago: within the limit, no wait.
        storage.runs.pending.store(5, ordering: .relaxed)
        storage.runs.oldestAgeMS.store(1_000, ordering: .relaxed)
        #expect(try await actor.finalize(project: project, run: try run("r1", ["a": "passed"]), attachments: [], quota: quota).run.seq == 1)
        // One run waiting, finalized three seconds ago: the next finalize waits, writing nothing, until it is rolled up.
        storage.runs.pending.store(1, ordering: .relaxed)
        storage.runs.oldestAgeMS.store(3_000, ordering: .relaxed)
        let asked = storage.runs.pendingAsked.load(ordering: .relaxed)
        let finalize = Task { try await actor.finalize(project: project, run: try run("r2", ["a": "passed"]), attachments: [], quota: quota) }
        try await waitUntil("the finalize asked three times") { storage.runs.pendingAsked.load(ordering: .relaxed) >= asked + 3 }
        #expect(storage.runs.rows.withLock { $0.count } == 1)
        storage.runs.pending.store(0, ordering: .relaxed)
        #expect(try await finalize.value.run.seq == 2)
        #expect(storage.runs.rows.withLock { $0.count } == 2)
        // No waiting run: nothing to wait for, whatever the last age was.
        #expect(RollUpBackpressure(maxLagSeconds: 2).holdsBack(RollUpBacklog(pending: 0, oldestAgeSeconds: 0)) == false)
        #expect(RollUpBackpressure(maxLagSeconds: .infinity).isOff)
    }

    /// A stuck roll-up slows a push down, never refuses it: after its longest wait the finalize goes on. Off
    /// (the default), nothing is asked at all.
    @Test func aFinalizeGoesOnAfterItsLongestWaitAndAsksNothingWhenOff() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor(rollUpBackpressure: RollUpBackpressure(maxPending: 1, maxWaitSeconds: 0.05))
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        storage.runs.pending.store(5, ordering: .relaxed)
        let quota = RateLimit(perMinute: 1000)
        #expect(try await actor.finalize(project: project, run: try run("r1", ["a": "passed"]), attachments: [], quota: quota).run.seq == 1)
        #expect(storage.runs.pendingAsked.load(ordering: .relaxed) >= 1)

        let other = MemoryStorage()
        let unlimited = other.actor()
        let web = try await unlimited.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        other.runs.pending.store(5, ordering: .relaxed)
        #expect(try await unlimited.finalize(project: web, run: try run("r1", ["a": "passed"]), attachments: [], quota: quota).run.seq == 1)
        #expect(other.runs.pendingAsked.load(ordering: .relaxed) == 0)
        #expect(RollUpBackpressure(maxPending: -3, maxWaitSeconds: .infinity) == RollUpBackpressure(maxPending: 0, maxWaitSeconds: 3_600))
    }

    /// Idle periods convert to nanoseconds without trapping, whatever they are.
    @Test func idlePeriodsAreClampedNotTrapped() {
        #expect(WorkspaceRegistry.nanoseconds(30) == 30_000_000_000)
        #expect(WorkspaceRegistry.nanoseconds(-5) == 0)
        #expect(WorkspaceRegistry.nanoseconds(.nan) == 0)
        #expect(WorkspaceRegistry.nanoseconds(1e30) == 1_000_000_000_000_000_000)
        #expect(WorkspaceRegistry.nanoseconds(.infinity) == 1_000_000_000_000_000_000)
    }

    /// Reads are `nonisolated`: one completes while a write holds the project's lane.
    @Test func readsDoNotWaitBehindAWrite() async throws {
        let storage = MemoryStorage()
        let actor = storage.actor()
        let project = try await actor.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
        storage.runs.holdPersist.withLock { $0 = true }
        let write = Task {
            try await actor.finalize(project: project, run: try run("r1", ["a": "passed"]), attachments: [], quota: RateLimit(perMinute: 10))
        }
        while !storage.runs.persistWaiting.withLock({ $0 != nil }) { await Task.yield() }
        // The write is inside the lane, suspended in storage; a read goes straight through.
        let page = try await actor.runs(project: project, branch: nil, beforeSeq: nil, limit: 10)
        #expect(page.isEmpty)
        storage.runs.release()
        #expect(try await write.value.run.seq == 1)
    }
}

// MARK: the seam

func run(_ externalRunId: String, _ statuses: [String: String]) throws -> ValidatedRun {
    var totals = ["passed": 0, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0]
    for status in statuses.values { totals[status, default: 0] += 1 }
    let json: [String: Any] = [
        "schemaVersion": "kensho/v1", "project": ["slug": "web"], "externalRunId": externalRunId, "branch": "main",
        "totals": totals, "cases": statuses.map { ["name": $0.key, "status": $0.value, "durationMs": 1] },
    ]
    let document = try KenshoJSON.decode(Array(try JSONSerialization.data(withJSONObject: json)))
    guard case .valid(let valid) = KenshoValidator().validate(document, knownAttachments: []) else {
        throw DomainError.internalError
    }
    return valid
}

/// A clock the test moves. The atomic lives in a class: a closure captures the reference, never the
/// address of a noncopyable local.
final class ManualClock: Sendable {
    let nanos = Atomic<UInt64>(1_000_000_000)
}

final class MemoryStorage: Sendable {
    let projects = MemoryProjects()
    let runs = MemoryRuns()

    func actor(
        rollUpBackpressure: RollUpBackpressure = .off, clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) -> WorkspaceActor {
        let unused = Unused()
        return WorkspaceActor(
            workspaceID: "ws_test", shardID: 0,
            repositories: TenantRepositories(
                projects: projects, runs: runs, uploads: unused, inventory: unused, defects: unused, intelligence: unused,
                analytics: unused, events: unused, jobs: unused, ci: MemoryCI(), webhooks: unused),
            blobs: unused, logger: .init(label: "test"), rollUpBackpressure: rollUpBackpressure, clock: clock)
    }
}

final class MemoryProjects: ProjectRepository {
    let rows = Mutex<[Project]>([])
    let seq = Mutex<Int64>(0)

    func writeSequence() async throws -> Int64 { seq.withLock { $0 } }
    func projects() async throws -> [Project] { rows.withLock { $0 } }
    func insertProject(slug: String, name: String, accessMode: AccessMode, defaultBranch: String, seq: Int64, by actor: AuditActor?) async throws
        -> Project
    {
        let project = Project(
            workspaceID: "ws_test", id: ResourceID.make(.project), slug: slug, name: name, accessMode: accessMode,
            defaultBranch: defaultBranch, createdSeq: seq, createdAt: Date())
        try rows.withLock { rows in
            if rows.contains(where: { $0.slug == slug }) { throw DomainError.uniqueViolation(constraint: "projects_slug_key") }
            if rows.contains(where: { $0.createdSeq == seq }) { throw DomainError.uniqueViolation(constraint: "projects_seq_key") }
            rows.append(project)
        }
        self.seq.withLock { $0 = max($0, seq) }
        return project
    }
    func projectStats() async throws -> [String: ProjectStatsRecord] { [:] }
    func projectHistory(projectID: String, topSuites: Int) async throws -> ProjectHistoryRecord {
        ProjectHistoryRecord(firstRunAt: nil, lastRunAt: nil, runCount: 0, topFailingSuites: [])
    }
}

final class MemoryRuns: RunRepository {
    struct Stored {
        let record: RunRecord
        let statuses: [String: CaseStatus]
    }
    let rows = Mutex<[Stored]>([])
    let conflicts = Atomic<Int>(0)
    /// When set, the next `persist` waits for `release()`.
    let holdPersist = Mutex(false)
    let persistWaiting = Mutex<CheckedContinuation<Void, Never>?>(nil)

    func release() { persistWaiting.withLock { $0.take() }?.resume() }

    func persist(_ new: NewRun) async throws -> PersistedRun {
        if holdPersist.withLock({ held in defer { held = false }; return held }) {
            await withCheckedContinuation { continuation in persistWaiting.withLock { $0 = continuation } }
        }
        let record = RunRecord(
            id: new.id, projectID: new.projectID, externalRunId: new.run.externalRunId, branch: new.run.branch,
            commit: nil, buildURL: nil, status: "closed", startedAt: nil, finishedAt: nil, env: [:], totals: new.run.totals,
            baselineRunID: new.baselineRunID, regression: new.regression, seq: new.seq, createdAt: Date())
        try rows.withLock { rows in
            if rows.contains(where: { $0.record.projectID == new.projectID && $0.record.externalRunId == record.externalRunId }) {
                throw DomainError.uniqueViolation(constraint: "runs_external_key")
            }
            if rows.contains(where: { $0.record.projectID == new.projectID && $0.record.seq == new.seq }) {
                conflicts.add(1, ordering: .relaxed)
                throw DomainError.uniqueViolation(constraint: "runs_seq_key")
            }
            rows.append(Stored(record: record, statuses: Dictionary(new.run.cases.map { ($0.key, $0.status) }) { a, _ in a }))
        }
        return PersistedRun(run: record, caseIDs: CaseIDMap())
    }
    // Sharded runs are tested against PostgreSQL (GatewayTests/ShardedRunTests); these tests never push a shard.
    func persistShard(_ new: NewShard) async throws -> StoredShard { throw DomainError.internalError }
    func shardedResults(runID: String) async throws -> [ShardedResult] { [] }
    func closeShardedRun(_ closing: ClosingRun) async throws -> RunRecord? { nil }
    func staleOpenRun(runID: String) async throws -> RunRecord? { nil }
    /// What `rollUpBacklog` answers (tests of the roll-up backpressure set it: runs, and the oldest one's age in
    /// milliseconds), and how often it was asked.
    let pending = Atomic<Int>(0)
    let oldestAgeMS = Atomic<Int>(0)
    let pendingAsked = Atomic<Int>(0)
    func rollUpBacklog(projectID: String) async throws -> RollUpBacklog {
        pendingAsked.add(1, ordering: .relaxed)
        return RollUpBacklog(
            pending: pending.load(ordering: .relaxed), oldestAgeSeconds: Double(oldestAgeMS.load(ordering: .relaxed)) / 1000)
    }
    func run(id: String) async throws -> RunRecord? { rows.withLock { $0.first { $0.record.id == id }?.record } }
    func run(projectID: String, externalRunId: String) async throws -> RunRecord? {
        rows.withLock { $0.first { $0.record.projectID == projectID && $0.record.externalRunId == externalRunId }?.record }
    }
    func latestRun(projectID: String, branch: String) async throws -> RunRecord? {
        rows.withLock { $0.filter { $0.record.projectID == projectID && $0.record.branch == branch }.max { $0.record.seq < $1.record.seq }?.record }
    }
    func runs(projectID: String, branch: String?, beforeSeq: Int64?, limit: Int) async throws -> [RunRecord] {
        rows.withLock { rows in
            Array(
                rows.map(\.record).filter { $0.projectID == projectID && (branch == nil || $0.branch == branch) && $0.seq < (beforeSeq ?? .max) }
                    .sorted { $0.seq > $1.seq }.prefix(limit))
        }
    }
    func maxRunSequence(projectID: String) async throws -> Int64 {
        rows.withLock { $0.filter { $0.record.projectID == projectID }.map(\.record.seq).max() ?? 0 }
    }
    /// How many times a baseline's statuses were read from "storage".
    let statusReads = Atomic<Int>(0)
    func caseStatuses(runID: String) async throws -> [String: CaseStatus] {
        statusReads.add(1, ordering: .relaxed)
        return rows.withLock { $0.first { $0.record.id == runID }?.statuses ?? [:] }
    }
    func caseResults(
        runID: String, filter: CaseResultFilter, onlyRegressed: Bool, afterOrdinal: Int, limit: Int
    ) async throws -> [CaseResultRecord] { [] }
    func caseResult(runID: String, caseID: String) async throws -> (CaseResultRecord, [FlatStep])? { nil }
    func runAttachments(runID: String, ids: [String]) async throws -> [DeclaredAttachment] { [] }
    func caseHistory(caseID: String, projectID: String, branch: String, limit: Int) async throws -> [CaseHistoryEntry] { [] }
    func recentRuns(projectIDs: [String], limit: Int) async throws -> [RunRecord] { [] }
}

/// The repositories these tests never reach: any call is a failure of the test, reported as such.
/// No gate and nothing quarantined: the finalize's gate answers `none`.
final class MemoryCI: CIRepository {
    func gate(projectID: String) async throws -> GateRecord { GateRecord(gate: nil, updatedBy: nil, updatedAt: nil) }
    func setGate(projectID: String, gate: QualityGate, by actor: AuditActor) async throws -> GateRecord {
        GateRecord(gate: gate, updatedBy: actor.id, updatedAt: Date())
    }
    func gateInputs(projectID: String, flakyKeys: [String]) async throws -> (gate: QualityGate?, context: GateContext) {
        (nil, GateContext())
    }
    func quarantine(caseID: String, reason: String, expiresAt: Date?, by actor: AuditActor) async throws -> QuarantineRecord? { nil }
    func release(caseID: String, by actor: AuditActor) async throws -> Bool { false }
    func quarantined(projectID: String, after: String?, limit: Int) async throws -> [QuarantineRecord] { [] }
    func quarantineOf(caseID: String) async throws -> QuarantineRecord? { nil }
    func quarantinePolicy(projectID: String) async throws -> QuarantinePolicyRecord {
        QuarantinePolicyRecord(policy: .default, updatedBy: nil, updatedAt: nil)
    }
    func setQuarantinePolicy(projectID: String, policy: QuarantinePolicy, by actor: AuditActor) async throws -> QuarantinePolicyRecord {
        QuarantinePolicyRecord(policy: policy, updatedBy: actor.id, updatedAt: Date())
    }
}

final class Unused: UploadRepository, InventoryRepository, DefectRepository, IntelligenceRepository, AnalyticsRepository,
    EventRepository, JobRepository, BlobStore, WebhookRepository
{
    func create(id: String, projectID: String, settings: WebhookSettings, secret: String, by actor: AuditActor) async throws
        -> WebhookRecord?
    { try fail() }
    func webhooks(projectID: String) async throws -> [WebhookRecord] { try fail() }
    func webhook(id: String) async throws -> WebhookRecord? { try fail() }
    func update(id: String, settings: WebhookSettings, by actor: AuditActor) async throws -> WebhookRecord? { try fail() }
    func delete(id: String, by actor: AuditActor) async throws -> Bool { try fail() }
    func rotateSecret(id: String, secret: String, graceSeconds: Int, by actor: AuditActor) async throws -> WebhookRecord? { try fail() }
    func deliveries(webhookID: String, before: String?, limit: Int) async throws -> [WebhookDeliveryRecord] { try fail() }
    func redeliver(webhookID: String, deliveryID: String) async throws -> WebhookDeliveryRecord? { try fail() }
    func ping(webhookID: String, by actor: AuditActor) async throws -> WebhookDeliveryRecord? { try fail() }

    func fail<T>(_ what: String = #function) throws -> T {
        Issue.record("unexpected call to \(what)")
        throw DomainError.internalError
    }
    func existingBlobs(_ shas: [String]) async throws -> Set<String> { try fail() }
    func recordBlob(sha256: String, size: Int64, contentType: String) async throws { try fail() as Void }
    func createUploadSession(_ session: UploadSession) async throws { try fail() as Void }
    func uploadSession(id: String) async throws -> UploadSession? { try fail() }
    func cases(projectID: String, filter: CaseFilter, sort: CaseSort, after: PagePosition?, limit: Int) async throws
        -> [CaseSummaryRecord]
    { try fail() }
    func caseSummary(id: String) async throws -> CaseSummaryRecord? { try fail() }
    func sameCommitEvidence(caseID: String) async throws -> SameCommitEvidence? { try fail() }
    func recentResults(caseID: String, limit: Int) async throws -> [CaseHistoryEntry] { try fail() }
    func annotateCase(id: String, owner: String??, labels: [String]?, defectIDs: [String]?, by actor: AuditActor) async throws
        -> Bool
    { try fail() }
    func caseProject(id: String) async throws -> String? { try fail() }
    func caseWindows(caseID: String, nowMilliseconds: UInt64) async throws -> [CaseWindowRecord] { try fail() }
    func existingCases(projectID: String, ids: [String]) async throws -> Set<String> { try fail() }
    func existingFailureGroups(projectID: String, fingerprints: [String]) async throws -> Set<String> { try fail() }
    func existingDefects(projectID: String, ids: [String]) async throws -> Set<String> { try fail() }
    func createDefect(projectID: String, change: DefectChange, by actor: AuditActor) async throws -> DefectRecord { try fail() }
    func updateDefect(id: String, change: DefectChange, by actor: AuditActor) async throws -> DefectRecord? { try fail() }
    func defect(id: String) async throws -> DefectRecord? { try fail() }
    func defects(projectID: String, status: DefectStatus?, before: String?, limit: Int) async throws -> [DefectRecord] {
        try fail()
    }
    func defectCounts(projectID: String) async throws -> [DefectStatus: Int] { try fail() }
    func defectsLinked(projectID: String, fingerprints: [String], caseIDs: [String]) async throws
        -> (byGroup: [String: [DefectRef]], byCase: [String: [DefectRef]])
    { try fail() }
    func runFailureGroups(runID: String) async throws -> [RunFailureGroupRecord] { try fail() }
    func projectFailureGroups(projectID: String, before: (micros: Int64, fingerprint: String)?, limit: Int) async throws
        -> [FailureGroupRecord]
    { try fail() }
    func flakyPolicy(projectID: String) async throws -> FlakyPolicyRecord { try fail() }
    func setFlakyPolicy(projectID: String, policy: FlakyPolicy, by actor: AuditActor) async throws -> FlakyPolicyRecord {
        try fail()
    }
    func flakyCases(projectID: String, after: (score: Double, caseID: String)?, limit: Int) async throws -> [FlakyCaseRecord] {
        try fail()
    }
    func rollUp(runIDs: [String], inOrder: Bool) async throws -> RollUpOutcome { try fail() }
    func dailyCounts(projectIDs: [String], days: Int, branch: String?) async throws -> [String: DailyCounts] { try fail() }
    func projectTotals(projectIDs: [String], days: Int) async throws -> [ProjectWindowTotals] { try fail() }
    func flakyCounts() async throws -> [String: Int] { try fail() }
    func events(projectID: String, kind: String?, before: String?, limit: Int) async throws -> [EventRecord] { try fail() }
    func auditEvents(filter: AuditFilter, limit: Int) async throws -> [AuditEvent] { try fail() }
    func stream(after position: Int64, projectIDs: [String]?, kinds: [String]?, limit: Int) async throws -> [StreamedEvent] { try fail() }
    func latestPosition() async throws -> Int64 { try fail() }
    func jobs(state: String?, limit: Int) async throws -> [JobRecord] { try fail() }
    var receivesUploads: Bool { true }
    func uploadTarget(for attachment: DeclaredAttachment, expiresSeconds: Int) -> UploadTarget { .kaizen }
    func receive<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, sha256: String, size: Int64) async throws
    where Chunks.Element == ArraySlice<UInt8> { try fail() as Void }
    func confirm(_ attachments: [DeclaredAttachment]) async throws -> [DeclaredAttachment] { try fail() }
    func download(_ attachment: DeclaredAttachment, expiresSeconds: Int) async throws -> BlobDownload? { try fail() }
}
