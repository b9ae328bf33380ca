import Foundation

/// A job of the durable post-ingest queue.
public struct JobRecord: Sendable, Hashable {
    public let workspaceID: String
    public let id: String
    public let kind: String
    public let payload: String
    public let state: String
    public let attempts: Int
    public let maxAttempts: Int
    public let runAfter: Date
    public let lastError: String?
    public let createdAt: Date

    public init(
        workspaceID: String, id: String, kind: String, payload: String, state: String, attempts: Int,
        maxAttempts: Int, runAfter: Date, lastError: String?, createdAt: Date
    ) {
        self.workspaceID = workspaceID
        self.id = id
        self.kind = kind
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.lastError = lastError
        self.createdAt = createdAt
    }
}
