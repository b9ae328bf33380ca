import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listFlakyCases(_ input: Operations.ListFlakyCases.Input) async throws -> Operations.ListFlakyCases.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let after = try input.query.cursor.map { try Cursor.decode($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let found = try await deps.registry.withWorkspace(grant) {
            try await $0.flakyCases(
                project: project, after: after.flatMap { p in p.number.map { (Cursor.score(fromBits: $0), p.id) } },
                limit: size + 1)
        }
        let (policy, rows) = (found.policy, found.cases)
        // The score's exact bits, so the next page starts exactly after the last row.
        let (page, next) = try Cursor.page(rows, size: size) {
            Cursor.encode(PagePosition(text: nil, number: Int64(bitPattern: $0.score.bitPattern), id: $0.caseID))
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        policy: .init(policy.policy),
                        items: page.map {
                            .init(
                                caseId: $0.caseID, name: $0.name, suite: $0.suite, lastStatus: .init($0.lastStatus),
                                score: $0.score, branch: $0.branch, flakySince: .timestamp($0.flakySince), results: $0.results,
                                flips: $0.flips, retryPasses: $0.retryPasses, lastFlipAt: .timestamp($0.lastFlipAt),
                                evidenceRunIds: $0.evidenceRunIDs)
                        }, nextCursor: next))))
    }

    func getFlakyPolicy(_ input: Operations.GetFlakyPolicy.Input) async throws -> Operations.GetFlakyPolicy.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let record = try await deps.registry.withWorkspace(grant) { try await $0.flakyPolicy(project: project) }
        return .ok(.init(body: .json(.init(record))))
    }

    func putFlakyPolicy(_ input: Operations.PutFlakyPolicy.Input) async throws -> Operations.PutFlakyPolicy.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let policy = FlakyPolicy(
            window: body.window, threshold: body.threshold, minResults: body.minResults, minFlips: body.minFlips,
            infraFailureRatio: body.infraFailureRatio, infraMinCases: body.infraMinCases)
        let problems = policy.problems()
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireAdmin(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.setFlakyPolicy(project: project, policy: policy, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(record))))
    }
}

extension Components.Schemas.FlakyPolicy {
    init(_ p: FlakyPolicy) {
        self.init(
            window: p.window, threshold: p.threshold, minResults: p.minResults, minFlips: p.minFlips,
            infraFailureRatio: p.infraFailureRatio, infraMinCases: p.infraMinCases)
    }
}

extension Components.Schemas.FlakyPolicyState {
    init(_ record: FlakyPolicyRecord) {
        self.init(
            value1: .init(Components.Schemas.FlakyPolicy(record.policy)),
            value2: .init(
                isDefault: record.updatedBy == nil,
                updatedBy: record.updatedBy.map { OpenAPIValueContainer(stringLiteral: $0) } ?? nil,
                updatedAt: .timestamp(record.updatedAt)))
    }
}

extension Components.Schemas.FlakyPolicyFields {
    init(_ p: Components.Schemas.FlakyPolicy) {
        self.init(
            window: p.window, threshold: p.threshold, minResults: p.minResults, minFlips: p.minFlips,
            infraFailureRatio: p.infraFailureRatio, infraMinCases: p.infraMinCases)
    }
}
