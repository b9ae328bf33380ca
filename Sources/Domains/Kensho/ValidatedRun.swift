import Foundation

/// A run that passed validation, normalized for storage and regression.
public struct ValidatedRun: Sendable {
    public let projectSlug: String
    public let externalRunId: String
    public let branch: String
    public let commit: String?
    public let buildURL: String?
    public let startedAt: Date?
    public let finishedAt: Date?
    public let env: [String: String]
    public let totals: RunTotals
    public let cases: [ValidatedCase]
    /// Every attachment id referenced by a case or step.
    public let attachmentIDs: Set<String>
    /// This document is one shard of the run (nil for a whole run, and for a run of one shard).
    public var shard: RunShard? = nil
}

/// Which part of a sharded run a document is.
public struct RunShard: Sendable, Hashable {
    public let index: Int
    public let total: Int

    public init(index: Int, total: Int) {
        self.index = index
        self.total = total
    }

    /// At most this many shards per run.
    public static let maxTotal = 1_000
    /// Shard `i`'s cases are numbered from `i × ordinalStride` in its run (a document holds at most 200,000), so
    /// shards of one run are stored side by side without agreeing on numbers first.
    public static let ordinalStride = 1 << 18
}

public struct ValidatedCase: Sendable, Hashable {
    /// Stable identity across runs: the explicit `key`, else derived from suite, name and parameters.
    public let key: String
    public let name: String
    public let suite: String?
    public let fullName: String?
    public let file: String?
    public let status: CaseStatus
    public let durationMs: Int64
    /// Attempts made, the final one included (1 when never retried).
    public let attempts: Int
    /// Passed on a later attempt after an earlier one failed or broke.
    public let flaky: Bool
    public let error: KenshoError?
    public let labels: [String: String]
    public let parameters: [String: String]
    /// The step tree flattened in pre-order.
    public let steps: [FlatStep]
    public let attachments: [String]
}

/// One node of a case's step tree; `parent` is the ordinal of the enclosing step.
public struct FlatStep: Sendable, Hashable {
    public let ordinal: Int
    public let parent: Int?
    public let depth: Int
    public let name: String
    public let status: CaseStatus
    public let durationMs: Int64
    public let attachments: [String]

    public init(
        ordinal: Int, parent: Int?, depth: Int, name: String, status: CaseStatus, durationMs: Int64, attachments: [String]
    ) {
        self.ordinal = ordinal
        self.parent = parent
        self.depth = depth
        self.name = name
        self.status = status
        self.durationMs = durationMs
        self.attachments = attachments
    }
}

/// Rebuilds the nested tree from flattened steps (pre-order, parents before children).
public struct StepNode: Sendable, Hashable {
    public let step: FlatStep
    public var children: [StepNode]

    public static func tree(_ steps: [FlatStep]) -> [StepNode] {
        var children: [Int?: [FlatStep]] = [:]
        for step in steps { children[step.parent, default: []].append(step) }
        func build(_ parent: Int?) -> [StepNode] {
            (children[parent] ?? []).map { StepNode(step: $0, children: build($0.ordinal)) }
        }
        return build(nil)
    }
}
