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
