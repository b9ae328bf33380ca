import Domains
import Foundation

/// What CI pipelines gate on: a project's quality gate and its quarantined cases.
public protocol CIRepository: Sendable {
    func gate(projectID: String) async throws -> GateRecord
    func setGate(projectID: String, gate: QualityGate, by actor: AuditActor) async throws -> GateRecord
    /// What a finalize's gate reads: the gate, the cases quarantined now (by key, with the reason) and,
    /// of `flakyKeys`, those the project already calls flaky.
    func gateInputs(projectID: String, flakyKeys: [String]) async throws -> (gate: QualityGate?, context: GateContext)
    /// Quarantines a case of the workspace (or changes its reason and expiry); nil when the workspace has
    /// no such case.
    func quarantine(caseID: String, reason: String, expiresAt: Date?, by actor: AuditActor) async throws -> QuarantineRecord?
    /// Releases a case; false when it was not quarantined (or is not the workspace's).
    func release(caseID: String, by actor: AuditActor) async throws -> Bool
    /// The project's quarantined cases (expired ones left out), by case id, after `after`.
    func quarantined(projectID: String, after: String?, limit: Int) async throws -> [QuarantineRecord]
    /// The case's quarantine in force, if any.
    func quarantineOf(caseID: String) async throws -> QuarantineRecord?
    func quarantinePolicy(projectID: String) async throws -> QuarantinePolicyRecord
    func setQuarantinePolicy(projectID: String, policy: QuarantinePolicy, by actor: AuditActor) async throws -> QuarantinePolicyRecord
}
