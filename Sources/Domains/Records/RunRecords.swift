import Foundation

/// A stored run.
public struct RunRecord: Sendable, Hashable {
    public let id: String
    public let projectID: String
    public let externalRunId: String
    public let branch: String
    public let commit: String?
    public let buildURL: String?
    public let status: String
    public let startedAt: Date?
    public let finishedAt: Date?
    public let env: [String: String]
    public let totals: RunTotals
    public let baselineRunID: String?
    public let regression: RegressionSummary
    /// Finalize order within the project.
    public let seq: Int64
    public let createdAt: Date
    /// The quality gate's verdict as the finalize answered it (`none` for runs stored before gates).
    public let gate: GateVerdict
    /// For a run assembled from shards: how many there are and how many arrived.
    public let shards: ShardProgress?

    public init(
        id: String, projectID: String, externalRunId: String, branch: String, commit: String?, buildURL: String?,
        status: String, startedAt: Date?, finishedAt: Date?, env: [String: String], totals: RunTotals,
        baselineRunID: String?, regression: RegressionSummary, seq: Int64, createdAt: Date, gate: GateVerdict = .none,
        shards: ShardProgress? = nil
    ) {
        self.gate = gate
        self.shards = shards
        self.id = id
        self.projectID = projectID
        self.externalRunId = externalRunId
        self.branch = branch
        self.commit = commit
        self.buildURL = buildURL
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.env = env
        self.totals = totals
        self.baselineRunID = baselineRunID
        self.regression = regression
        self.seq = seq
        self.createdAt = createdAt
    }
}

extension RunRecord {
    /// `open` while a sharded run waits for shards; `closed`, or `partial` for a sharded run closed on what arrived.
    public static let open = "open", closed = "closed", partial = "partial"

    public var isOpen: Bool { status == Self.open }
}

/// The shards of a sharded run: how many the build has and how many arrived.
public struct ShardProgress: Sendable, Hashable {
    public let total: Int
    public let received: Int

    public init(total: Int, received: Int) {
        self.total = total
        self.received = received
    }
}

/// One case's result in one run.
public struct CaseResultRecord: Sendable, Hashable {
    public let ordinal: Int
    public let caseID: String
    public let caseKey: String
    public let name: String
    public let suite: String?
    public let fullName: String?
    public let file: String?
    public let status: CaseStatus
    public let durationMs: Int64
    public let attempts: Int
    public let flaky: Bool
    public let regression: RegressionBucket?
    public let error: KenshoError?
    public let labels: [String: String]
    public let parameters: [String: String]
    public let attachments: [String]

    public init(
        ordinal: Int, caseID: String, caseKey: String, name: String, suite: String?, fullName: String?, file: String?,
        status: CaseStatus, durationMs: Int64, attempts: Int, flaky: Bool, regression: RegressionBucket?,
        error: KenshoError?, labels: [String: String], parameters: [String: String], attachments: [String]
    ) {
        self.ordinal = ordinal
        self.caseID = caseID
        self.caseKey = caseKey
        self.name = name
        self.suite = suite
        self.fullName = fullName
        self.file = file
        self.status = status
        self.durationMs = durationMs
        self.attempts = attempts
        self.flaky = flaky
        self.regression = regression
        self.error = error
        self.labels = labels
        self.parameters = parameters
        self.attachments = attachments
    }
}

/// An attachment: declared at init, and once uploaded and referenced, linked to its run.
public struct DeclaredAttachment: Sendable, Hashable, Codable {
    public let id: String
    public let sha256: String
    public let size: Int64
    public let contentType: String

    public init(id: String, sha256: String, size: Int64, contentType: String) {
        self.id = id
        self.sha256 = sha256
        self.size = size
        self.contentType = contentType
    }
}

public struct UploadSession: Sendable, Hashable {
    public let id: String
    public let workspaceID: String
    public let projectID: String
    public let externalRunId: String
    public let attachments: [DeclaredAttachment]
    public let expiresAt: Date

    public init(
        id: String, workspaceID: String, projectID: String, externalRunId: String, attachments: [DeclaredAttachment],
        expiresAt: Date
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.projectID = projectID
        self.externalRunId = externalRunId
        self.attachments = attachments
        self.expiresAt = expiresAt
    }
}

/// One earlier result of a case, for its history on a branch.
public struct CaseHistoryEntry: Sendable, Hashable {
    public let runID: String
    public let externalRunId: String
    public let branch: String
    public let status: CaseStatus
    public let durationMs: Int64
    public let errorMessage: String?
    public let createdAt: Date

    public init(
        runID: String, externalRunId: String, branch: String, status: CaseStatus, durationMs: Int64,
        errorMessage: String?, createdAt: Date
    ) {
        self.runID = runID
        self.externalRunId = externalRunId
        self.branch = branch
        self.status = status
        self.durationMs = durationMs
        self.errorMessage = errorMessage
        self.createdAt = createdAt
    }
}

/// Everything one finalize writes.
public struct NewRun: Sendable {
    public let id: String
    public let projectID: String
    public let run: ValidatedRun
    public let baselineRunID: String?
    public let regression: RegressionSummary
    /// Per case, in `run.cases` order.
    public let buckets: [RegressionBucket?]
    public let seq: Int64
    /// Attachments of the run that are stored (declared at init and present in the blob store).
    public let attachments: [DeclaredAttachment]
    /// Inventory ids (the ULIDs of `case_…` ids) already known by case key digest (the workspace actor's
    /// cache). Keys not in it are inserted or looked up in the transaction; a case's id never changes.
    public let knownCaseIDs: CaseIDMap
    /// The digest of each case's key, in `run.cases` order.
    public let keyDigests: [CaseKeyDigest]
    /// The quality gate's verdict on the run (stored with it, and a `run.gate_failed` event when failed).
    public let gate: GateVerdict

    public init(
        id: String, projectID: String, run: ValidatedRun, baselineRunID: String?, regression: RegressionSummary,
        buckets: [RegressionBucket?], seq: Int64, attachments: [DeclaredAttachment], knownCaseIDs: CaseIDMap = CaseIDMap(),
        keyDigests: [CaseKeyDigest]? = nil, gate: GateVerdict = .none
    ) {
        self.gate = gate
        self.knownCaseIDs = knownCaseIDs
        let digests = keyDigests ?? []
        self.keyDigests = digests.count == run.cases.count ? digests : CaseKeyDigest.of(run.cases.lazy.map { $0.key })
        self.id = id
        self.projectID = projectID
        self.run = run
        self.baselineRunID = baselineRunID
        self.regression = regression
        self.buckets = buckets
        self.seq = seq
        self.attachments = attachments
    }
}

/// What persisting a run stored, and the inventory ids of its cases (for the caller's cache).
public struct PersistedRun: Sendable {
    public let run: RunRecord
    /// Every case id the transaction knew, by key digest (the cache's and the run's).
    public let caseIDs: CaseIDMap

    public init(run: RunRecord, caseIDs: CaseIDMap) {
        self.run = run
        self.caseIDs = caseIDs
    }
}

/// Which of a run's results a page lists; nil fields do not filter.
public struct CaseResultFilter: Sendable, Hashable {
    public var status: CaseStatus?
    public var suite: String?
    /// Case-insensitive text in the name, suite or key.
    public var text: String?
    public var bucket: RegressionBucket?

    public init(status: CaseStatus? = nil, suite: String? = nil, text: String? = nil, bucket: RegressionBucket? = nil) {
        self.status = status
        self.suite = suite
        self.text = text
        self.bucket = bucket
    }
}

/// One shard of a sharded run to store: its cases go into the run (created by the first shard, `open`).
public struct NewShard: Sendable {
    /// The run's id should this shard be the first to arrive (otherwise the stored run's is kept).
    public let runID: String
    public let projectID: String
    /// The shard's document, `run.shard` set.
    public let run: ValidatedRun
    public let shard: RunShard
    /// Identifies the shard's content: a re-sent shard with the same digest replays, another is a conflict.
    public let digest: String
    public let attachments: [DeclaredAttachment]
    public let knownCaseIDs: CaseIDMap
    public let keyDigests: [CaseKeyDigest]
    /// Each case's bucket against the branch's baseline as the shard arrives: usually the close's, which then
    /// rewrites none (it recomputes them all against the baseline it takes, and writes only the differences).
    public let buckets: [RegressionBucket?]
    /// How long the run waits for its next shard before it is closed as partial.
    public let timeoutSeconds: Int

    public init(
        runID: String, projectID: String, run: ValidatedRun, shard: RunShard, digest: String, attachments: [DeclaredAttachment],
        knownCaseIDs: CaseIDMap, keyDigests: [CaseKeyDigest], buckets: [RegressionBucket?], timeoutSeconds: Int
    ) {
        self.buckets = buckets
        self.runID = runID
        self.projectID = projectID
        self.run = run
        self.shard = shard
        self.digest = digest
        self.attachments = attachments
        self.knownCaseIDs = knownCaseIDs
        self.keyDigests = keyDigests
        self.timeoutSeconds = timeoutSeconds
    }
}

/// What storing a shard did.
public enum StoredShard: Sendable {
    /// Stored; the run as it now stands (open, or with every shard arrived and ready to close), and the
    /// inventory ids of this shard's cases.
    case stored(RunRecord, caseIDs: CaseIDMap)
    /// This shard was already stored with the same content: nothing written.
    case replayed(RunRecord)
}

/// Closing a sharded run: the assembled results' regression and gate, written once.
public struct ClosingRun: Sendable {
    public let runID: String
    public let projectID: String
    public let branch: String
    public let seq: Int64
    public let baselineRunID: String?
    public let assembly: ShardAssembly
    public let regression: RegressionSummary
    /// Per result of `assembly.results`, in order.
    public let buckets: [RegressionBucket?]
    public let gate: GateVerdict
    /// Closed on the shards that arrived before the timeout.
    public let partial: Bool

    public init(
        runID: String, projectID: String, branch: String, seq: Int64, baselineRunID: String?, assembly: ShardAssembly,
        regression: RegressionSummary, buckets: [RegressionBucket?], gate: GateVerdict, partial: Bool
    ) {
        self.runID = runID
        self.projectID = projectID
        self.branch = branch
        self.seq = seq
        self.baselineRunID = baselineRunID
        self.assembly = assembly
        self.regression = regression
        self.buckets = buckets
        self.gate = gate
        self.partial = partial
    }
}
