import Domains
import Foundation

/// Quality gates and quarantine. All `nonisolated`: each is one read or one transaction that needs no
/// in-process state (the finalize reads the gate's inputs before entering its project's lane).
extension WorkspaceActor {
    public nonisolated func gate(project: Project) async throws -> GateRecord {
        try await repos.ci.gate(projectID: project.id)
    }

    public nonisolated func setGate(project: Project, gate: QualityGate, by actor: AuditActor) async throws -> GateRecord {
        try await repos.ci.setGate(projectID: project.id, gate: gate, by: actor)
    }

    /// Quarantines a case of `project` until `expiresAt` (nil: until released); an expiry in the past is refused.
    public nonisolated func quarantine(
        caseID: String, project: Project, reason: String, expiresAt: Date?, now: Date = Date(), by actor: AuditActor
    ) async throws -> QuarantineRecord {
        var problems: [FieldProblem] = []
        if reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || reason.count > QuarantineRecord.maxReasonLength {
            problems.append(.init(pointer: "/reason", message: "says why, in 1 to \(QuarantineRecord.maxReasonLength) characters"))
        }
        if let expiresAt, expiresAt <= now {
            problems.append(.init(pointer: "/expiresAt", message: "is in the past"))
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        guard let record = try await repos.ci.quarantine(caseID: caseID, reason: reason, expiresAt: expiresAt, by: actor) else {
            throw DomainError.notFound("no case '\(caseID)'")
        }
        return record
    }

    public nonisolated func release(caseID: String, by actor: AuditActor) async throws {
        guard try await repos.ci.release(caseID: caseID, by: actor) else {
            throw DomainError.notFound("case '\(caseID)' is not quarantined")
        }
    }

    public nonisolated func quarantinePolicy(project: Project) async throws -> QuarantinePolicyRecord {
        try await repos.ci.quarantinePolicy(projectID: project.id)
    }

    public nonisolated func setQuarantinePolicy(project: Project, policy: QuarantinePolicy, by actor: AuditActor) async throws
        -> QuarantinePolicyRecord
    {
        let problems = policy.problems()
        if !problems.isEmpty { throw DomainError.validation(problems) }
        return try await repos.ci.setQuarantinePolicy(projectID: project.id, policy: policy, by: actor)
    }

    public nonisolated func quarantined(project: Project, after: String?, limit: Int) async throws -> [QuarantineRecord] {
        try await repos.ci.quarantined(projectID: project.id, after: after, limit: limit)
    }

    nonisolated func gateInputs(project: Project, run: ValidatedRun) async throws -> GateInputs {
        var seen = Set<String>()
        let retried = run.cases.filter { $0.flaky && $0.status == .passed && seen.insert($0.key).inserted }.map(\.key)
        let (gate, context) = try await repos.ci.gateInputs(projectID: project.id, flakyKeys: retried)
        return GateInputs(gate: gate, context: context)
    }
}

/// What a finalize's gate reads from storage.
struct GateInputs: Sendable {
    let gate: QualityGate?
    let context: GateContext
}
