import Foundation

/// The failures of one run grouped by fingerprint.
public struct RunFailureGroupRecord: Sendable, Hashable {
    public let fingerprint: String
    public let errorType: String?
    public let sampleMessage: String?
    public let count: Int
    /// Up to 20 (case id, name) pairs, in run order.
    public let cases: [CaseRef]
    /// The run in which the project first saw this cluster; nil until this run's roll-up ran.
    public let firstSeenRunID: String?

    public struct CaseRef: Sendable, Hashable {
        public let id: String
        public let name: String

        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    public init(
        fingerprint: String, errorType: String?, sampleMessage: String?, count: Int, cases: [CaseRef],
        firstSeenRunID: String?
    ) {
        self.fingerprint = fingerprint
        self.errorType = errorType
        self.sampleMessage = sampleMessage
        self.count = count
        self.cases = cases
        self.firstSeenRunID = firstSeenRunID
    }
}

/// A cluster across a project's history (`failure_groups`, kept by the post-ingest roll-up).
public struct FailureGroupRecord: Sendable, Hashable {
    public let fingerprint: String
    public let errorType: String?
    public let sampleMessage: String?
    public let firstSeenRunID: String
    public let firstSeenAt: Date
    public let lastSeenRunID: String
    public let lastSeenAt: Date
    public let runs: Int
    public let occurrences: Int
    /// `lastSeenAt` in microseconds, exact, for page cursors.
    public let lastSeenMicros: Int64
    /// Distinct cases the cluster struck, all runs.
    public let affectedCases: Int
    /// Up to 5 of them, most recently struck first.
    public let recentCases: [RunFailureGroupRecord.CaseRef]

    public init(
        fingerprint: String, errorType: String?, sampleMessage: String?, firstSeenRunID: String, firstSeenAt: Date,
        lastSeenRunID: String, lastSeenAt: Date, runs: Int, occurrences: Int, lastSeenMicros: Int64,
        affectedCases: Int, recentCases: [RunFailureGroupRecord.CaseRef]
    ) {
        self.fingerprint = fingerprint
        self.errorType = errorType
        self.sampleMessage = sampleMessage
        self.firstSeenRunID = firstSeenRunID
        self.firstSeenAt = firstSeenAt
        self.lastSeenRunID = lastSeenRunID
        self.lastSeenAt = lastSeenAt
        self.runs = runs
        self.occurrences = occurrences
        self.lastSeenMicros = lastSeenMicros
        self.affectedCases = affectedCases
        self.recentCases = recentCases
    }
}
