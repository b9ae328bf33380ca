import Foundation

/// A project's quality gate and who set it (nil fields: never set).
public struct GateRecord: Sendable, Equatable {
    public let gate: QualityGate?
    public let updatedBy: String?
    public let updatedAt: Date?

    public init(gate: QualityGate?, updatedBy: String?, updatedAt: Date?) {
        self.gate = gate
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
    }
}

/// A quarantined case: it still runs and is still stored, but never fails a gate.
public struct QuarantineRecord: Sendable, Equatable {
    public let caseID: String
    public let projectID: String
    public let key: String
    public let name: String
    public let suite: String?
    public let reason: String
    public let quarantinedBy: String
    public let quarantinedAt: Date
    public let expiresAt: Date?
    /// Put there by auto-quarantine (released after clean passes) rather than by a person.
    public let automatic: Bool

    public init(
        caseID: String, projectID: String, key: String, name: String, suite: String?, reason: String, quarantinedBy: String,
        quarantinedAt: Date, expiresAt: Date?, automatic: Bool
    ) {
        self.caseID = caseID
        self.projectID = projectID
        self.key = key
        self.name = name
        self.suite = suite
        self.reason = reason
        self.quarantinedBy = quarantinedBy
        self.quarantinedAt = quarantinedAt
        self.expiresAt = expiresAt
        self.automatic = automatic
    }

    public static let maxReasonLength = 500
}

/// Per project: auto-quarantine of the cases the flaky policy calls flaky.
public struct QuarantinePolicy: Sendable, Hashable, Codable {
    /// Quarantine a case when it becomes flaky (never a case that is merely broken: the flaky verdict
    /// needs flips or a pass on retry).
    public var autoQuarantine: Bool
    /// Release an automatic quarantine after this many consecutive clean passes (passed, not on a retry).
    public var releaseAfterCleanPasses: Int

    public static let `default` = QuarantinePolicy(autoQuarantine: false, releaseAfterCleanPasses: 10)
    public static let maxReleaseAfter = 1000

    public init(autoQuarantine: Bool, releaseAfterCleanPasses: Int) {
        self.autoQuarantine = autoQuarantine
        self.releaseAfterCleanPasses = releaseAfterCleanPasses
    }

    public func problems() -> [FieldProblem] {
        (1...Self.maxReleaseAfter).contains(releaseAfterCleanPasses)
            ? [] : [FieldProblem(pointer: "/releaseAfterCleanPasses", message: "must be between 1 and \(Self.maxReleaseAfter)")]
    }
}

/// A project's quarantine policy and who set it (nil: the default, never set).
public struct QuarantinePolicyRecord: Sendable, Hashable {
    public let policy: QuarantinePolicy
    public let updatedBy: String?
    public let updatedAt: Date?

    public init(policy: QuarantinePolicy, updatedBy: String?, updatedAt: Date?) {
        self.policy = policy
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
    }
}

/// Auto-quarantine replayed over a roll-up's runs in finalize order, so a batch decides exactly what its
/// runs one by one would: a case becomes quarantined with the run that made it flaky, and counts clean
/// passes from the next run on; a failure (or a pass on retry) starts the count again.
public struct AutoQuarantineReplay: Sendable {
    public struct Change: Sendable, Hashable {
        public let caseID: String
        public let runID: String
        public let quarantined: Bool
    }

    public let releaseAfter: Int
    /// Automatic quarantines and their clean passes so far.
    public private(set) var counts: [String: Int]
    /// Quarantined by a person: auto-quarantine leaves them alone.
    public let manual: Set<String>
    public private(set) var changes: [Change] = []

    public init(releaseAfter: Int, automatic: [String: Int], manual: Set<String>) {
        self.releaseAfter = max(1, releaseAfter)
        self.counts = automatic
        self.manual = manual
    }

    /// One run: first the clean passes of the cases already quarantined, then the cases it made flaky.
    public mutating func fold(runID: String, results: [RolledResult], becameFlaky: [String]) {
        for result in results {
            guard let count = counts[result.caseID] else { continue }
            switch result.status {
            case .skipped: continue
            case .passed where !result.retried:
                if count + 1 >= releaseAfter {
                    counts[result.caseID] = nil
                    changes.append(Change(caseID: result.caseID, runID: runID, quarantined: false))
                } else {
                    counts[result.caseID] = count + 1
                }
            default: counts[result.caseID] = 0
            }
        }
        for caseID in becameFlaky where counts[caseID] == nil && !manual.contains(caseID) {
            counts[caseID] = 0
            changes.append(Change(caseID: caseID, runID: runID, quarantined: true))
        }
    }
}
