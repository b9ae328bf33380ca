import Foundation

/// A stored domain event (`flaky.detected`, `defect.opened`); webhooks will deliver them.
public struct EventRecord: Sendable, Hashable {
    public let id: String
    public let kind: String
    public let subjectID: String
    /// The event's JSON object, as stored.
    public let payload: String
    public let createdAt: Date

    public init(id: String, kind: String, subjectID: String, payload: String, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.subjectID = subjectID
        self.payload = payload
        self.createdAt = createdAt
    }
}
