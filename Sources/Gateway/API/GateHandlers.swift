import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

/// Quality gates and quarantine.
extension KaizenAPI {
    func getQualityGate(_ input: Operations.GetQualityGate.Input) async throws -> Operations.GetQualityGate.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let record = try await deps.registry.withWorkspace(grant) { try await $0.gate(project: project) }
        return .ok(.init(body: .json(.init(record))))
    }

    func putQualityGate(_ input: Operations.PutQualityGate.Input) async throws -> Operations.PutQualityGate.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let draft = QualityGate.Draft(
            rules: body.rules.map { .init(rule: $0.rule, limit: $0.limit, suites: $0.suites, branches: $0.branches) })
        let gate = try QualityGate.validate(draft).get()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireAdmin(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.setGate(project: project, gate: gate, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(record))))
    }

    func getQuarantinePolicy(_ input: Operations.GetQuarantinePolicy.Input) async throws -> Operations.GetQuarantinePolicy.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let record = try await deps.registry.withWorkspace(grant) { try await $0.quarantinePolicy(project: project) }
        return .ok(.init(body: .json(.init(record))))
    }

    func putQuarantinePolicy(_ input: Operations.PutQuarantinePolicy.Input) async throws -> Operations.PutQuarantinePolicy.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let policy = QuarantinePolicy(autoQuarantine: body.autoQuarantine, releaseAfterCleanPasses: body.releaseAfterCleanPasses)
        let problems = policy.problems()
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireAdmin(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.setQuarantinePolicy(project: project, policy: policy, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(record))))
    }

    func listQuarantine(_ input: Operations.ListQuarantine.Input) async throws -> Operations.ListQuarantine.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let after = try input.query.cursor.flatMap { try Cursor.decodeID($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.quarantined(project: project, after: after, limit: size + 1)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(id: $0.caseID) }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.Quarantine.init), nextCursor: next))))
    }

    func quarantineCase(_ input: Operations.QuarantineCase.Input) async throws -> Operations.QuarantineCase.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let (grant, project) = try await findCase(identity, id: input.path.caseId)
        try requireWrite(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.quarantine(
                caseID: input.path.caseId, project: project, reason: body.reason, expiresAt: body.expiresAt,
                by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(record))))
    }

    func releaseCase(_ input: Operations.ReleaseCase.Input) async throws -> Operations.ReleaseCase.Output {
        let identity = try RequestIdentity.required()
        let (grant, _) = try await findCase(identity, id: input.path.caseId)
        try requireWrite(grant)
        try await deps.registry.withWorkspace(grant) { try await $0.release(caseID: input.path.caseId, by: RequestOrigin.actor(identity)) }
        return .noContent(.init())
    }
}

extension Components.Schemas.QualityGateState {
    init(_ record: GateRecord) {
        self.init(
            rules: (record.gate?.rules ?? []).map(Components.Schemas.GateRule.init), isDefault: record.updatedBy == nil,
            updatedBy: record.updatedBy, updatedAt: record.updatedAt)
    }
}

extension Components.Schemas.GateRule {
    init(_ rule: Domains.GateRule) {
        self.init(rule: rule.rule.rawValue, limit: rule.limit, suites: rule.suites, branches: rule.branches)
    }
}

extension Components.Schemas.GateVerdict {
    init(_ verdict: GateVerdict) {
        self.init(
            status: .init(rawValue: verdict.status.rawValue) ?? .none,
            rules: verdict.rules.map {
                .init(rule: $0.rule.rawValue, limit: $0.limit, suites: $0.suites, actual: $0.actual, passed: $0.passed, detail: $0.detail)
            },
            forgiven: verdict.forgiven.map {
                .init(key: $0.key, name: $0.name, status: .init(rawValue: $0.status.rawValue) ?? .broken, reason: $0.reason)
            },
            forgivenCount: verdict.forgivenCount)
    }
}

extension Components.Schemas.Quarantine {
    init(_ record: QuarantineRecord) {
        self.init(
            caseId: record.caseID, key: record.key, name: record.name, suite: record.suite, reason: record.reason,
            quarantinedBy: record.quarantinedBy, quarantinedAt: record.quarantinedAt, expiresAt: record.expiresAt,
            automatic: record.automatic)
    }
}

extension Components.Schemas.QuarantinePolicyState {
    init(_ record: QuarantinePolicyRecord) {
        self.init(
            autoQuarantine: record.policy.autoQuarantine, releaseAfterCleanPasses: record.policy.releaseAfterCleanPasses,
            isDefault: record.updatedBy == nil, updatedBy: record.updatedBy, updatedAt: record.updatedAt)
    }
}
