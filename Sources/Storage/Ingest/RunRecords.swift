import Domains
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
}
