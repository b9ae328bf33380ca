import Foundation

public enum DefectStatus: String, Sendable, CaseIterable, Codable {
    case open, acknowledged, resolved
    case falsePositive = "false_positive"
}

/// A defect with its links and how often it struck.
public struct DefectRecord: Sendable, Hashable {
    public let id: String
    public let projectID: String
    public let title: String
    public let externalURL: String?
    public let status: DefectStatus
    public let createdBy: String
    public let createdAt: Date
    public let updatedBy: String
    public let updatedAt: Date
    public let cases: [LinkedCase]
    public let failureGroups: [LinkedGroup]
    /// Distinct runs with a failing result of a linked case or cluster.
    public let affectedRuns: Int
    public let lastAffectedRunID: String?
    public let lastAffectedAt: Date?

    public struct LinkedCase: Sendable, Hashable {
        public let id: String
        public let name: String

        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    public struct LinkedGroup: Sendable, Hashable {
        public let fingerprint: String
        public let errorType: String?
        public let sampleMessage: String?

        public init(fingerprint: String, errorType: String?, sampleMessage: String?) {
            self.fingerprint = fingerprint
            self.errorType = errorType
            self.sampleMessage = sampleMessage
        }
    }

    public init(
        id: String, projectID: String, title: String, externalURL: String?, status: DefectStatus, createdBy: String,
        createdAt: Date, updatedBy: String, updatedAt: Date, cases: [LinkedCase], failureGroups: [LinkedGroup],
        affectedRuns: Int, lastAffectedRunID: String?, lastAffectedAt: Date?
    ) {
        self.id = id
        self.projectID = projectID
        self.title = title
        self.externalURL = externalURL
        self.status = status
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
        self.cases = cases
        self.failureGroups = failureGroups
        self.affectedRuns = affectedRuns
        self.lastAffectedRunID = lastAffectedRunID
        self.lastAffectedAt = lastAffectedAt
    }
}

/// What a create or update writes; nil fields are left as they are.
public struct DefectChange: Sendable {
    public var title: String?
    /// `.some(nil)` clears the link.
    public var externalURL: String??
    public var status: DefectStatus?
    public var caseIDs: [String]?
    public var fingerprints: [String]?

    public init(
        title: String? = nil, externalURL: String?? = nil, status: DefectStatus? = nil, caseIDs: [String]? = nil,
        fingerprints: [String]? = nil
    ) {
        self.title = title
        self.externalURL = externalURL
        self.status = status
        self.caseIDs = caseIDs
        self.fingerprints = fingerprints
    }
}

/// Defects linked to failures, for attributing a run's failure clusters.
public struct DefectRef: Sendable, Hashable {
    public let id: String
    public let title: String
    public let status: DefectStatus

    public init(id: String, title: String, status: DefectStatus) {
        self.id = id
        self.title = title
        self.status = status
    }
}
