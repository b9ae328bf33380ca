import Domains
import Foundation
import OpenAPIRuntime
import Storage

extension KaizenAPI {
    func listProjectCases(_ input: Operations.ListProjectCases.Input) async throws -> Operations.ListProjectCases.Output {
        let identity = try RequestIdentity.required()
        let q = input.query
        let size = try pageSize(q.limit, default: 100)
        if let text = q.q, text.count > 200 { throw APIError.validation(pointer: "/q", "must be at most 200 characters") }
        let sort = q.sort.flatMap { CaseSort(rawValue: $0.rawValue) } ?? .name
        let after = try q.cursor.map { try CaseCursor.decode($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: q.workspace)
        let filter = CaseFilter(
            lastStatus: q.status.flatMap { CaseStatus(rawValue: $0.rawValue) }, suite: q.suite, text: q.q,
            flakyOnly: q.flaky ?? false)
        let rows = try await deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
            .cases(projectID: project.id, filter: filter, sort: sort, after: after, limit: size + 1)
        let page = rows.prefix(size)
        var next: OpenAPIValueContainer = nil
        if rows.count > size, let last = page.last {
            next = OpenAPIValueContainer(stringLiteral: try CaseCursor.encode(position(of: last, sort: sort)))
        }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.CaseSummary.init), nextCursor: next))))
    }

    func getCase(_ input: Operations.GetCase.Input) async throws -> Operations.GetCase.Output {
        let identity = try RequestIdentity.required()
        let id = input.path.caseId
        guard ResourceID.isValid(id, prefix: .testCase) else { throw APIError.notFound("case '\(id)' not found") }
        for grant in identity.grants {
            let store = try deps.cluster.tenant(grant.workspaceID, shard: grant.shardID)
            guard let summary = try await store.caseSummary(id: id),
                let project = try await deps.registry.withWorkspace(grant, { try await $0.projects() })
                    .first(where: { $0.id == summary.projectID }),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { continue }
            let recent = try await store.recentResults(caseID: id, limit: 20)
            return .ok(
                .init(
                    body: .json(
                        .init(
                            value1: .init(summary),
                            value2: .init(
                                project: .init(id: project.id, slug: project.slug),
                                recent: recent.map {
                                    .init(
                                        runId: $0.runID, externalRunId: $0.externalRunId, branch: $0.branch,
                                        status: .init($0.status), durationMs: Int($0.durationMs),
                                        errorMessage: $0.errorMessage, createdAt: $0.createdAt)
                                }))))
            )
        }
        throw APIError.notFound("case '\(id)' not found")
    }

    func position(of row: CaseSummaryRecord, sort: CaseSort) -> CasePosition {
        switch sort {
        case .name: CasePosition(text: row.name, number: nil, id: row.id)
        case .failures: CasePosition(text: nil, number: Int64(row.failed + row.broken), id: row.id)
        case .lastFailed:
            CasePosition(text: nil, number: row.lastFailedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0, id: row.id)
        }
    }
}

/// Keyset cursors of the case inventory: the last row's sort key and id, base64url JSON.
enum CaseCursor {
    static func encode(_ position: CasePosition) throws -> String {
        Cursor.base64url(try JSONEncoder().encode(position))
    }

    static func decode(_ cursor: String) throws -> CasePosition {
        guard let data = Cursor.bytes(cursor), let position = try? JSONDecoder().decode(CasePosition.self, from: data)
        else { throw APIError.badRequest("the cursor is not one this server issued") }
        return position
    }
}

extension Components.Schemas.CaseSummary {
    init(_ r: CaseSummaryRecord) {
        let ran = r.runs - r.skipped
        self.init(
            id: r.id, key: r.key, name: r.name, suite: r.suite, file: r.file, lastStatus: .init(r.lastStatus),
            lastRunId: r.lastRunID, firstSeenAt: r.firstSeenAt, lastSeenAt: r.lastSeenAt,
            lastFailedAt: .timestamp(r.lastFailedAt), runs: r.runs, passed: r.passed, failed: r.failed, broken: r.broken,
            skipped: r.skipped, flaky: r.flaky, passRate: .number(ran > 0 ? Double(r.passed) / Double(ran) : nil),
            avgDurationMs: r.runs > 0 ? Int(r.totalDurationMs / Int64(r.runs)) : 0)
    }
}

extension KaizenAPI {
    func listRunFailureGroups(_ input: Operations.ListRunFailureGroups.Input) async throws
        -> Operations.ListRunFailureGroups.Output
    {
        let identity = try RequestIdentity.required()
        let (grant, _, run) = try await findRun(identity, id: input.path.runId)
        let groups = try await deps.cluster.tenant(grant.workspaceID, shard: grant.shardID).runFailureGroups(runID: run.id)
        return .ok(
            .init(
                body: .json(
                    groups.map { group in
                        .init(
                            fingerprint: group.fingerprint, errorType: group.errorType, sampleMessage: group.sampleMessage,
                            count: group.count, cases: group.cases.map { .init(caseId: $0.id, name: $0.name) },
                            isNew: group.firstSeenRunID.map { OpenAPIValueContainer(booleanLiteral: $0 == run.id) } ?? nil)
                    })))
    }

    func listProjectFailureGroups(_ input: Operations.ListProjectFailureGroups.Input) async throws
        -> Operations.ListProjectFailureGroups.Output
    {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let before = try input.query.cursor.map { try CaseCursor.decode($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let rows = try await deps.cluster.tenant(grant.workspaceID, shard: grant.shardID).projectFailureGroups(
            projectID: project.id, before: before.map { ($0.number ?? 0, $0.id) }, limit: size + 1)
        let page = rows.prefix(size)
        var next: OpenAPIValueContainer = nil
        if rows.count > size, let last = page.last {
            next = OpenAPIValueContainer(
                stringLiteral: try CaseCursor.encode(CasePosition(text: nil, number: last.lastSeenMicros, id: last.fingerprint)))
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map {
                            .init(
                                fingerprint: $0.fingerprint, errorType: $0.errorType, sampleMessage: $0.sampleMessage,
                                firstSeenRunId: $0.firstSeenRunID, firstSeenAt: $0.firstSeenAt, lastSeenRunId: $0.lastSeenRunID,
                                lastSeenAt: $0.lastSeenAt, runs: $0.runs, occurrences: $0.occurrences)
                        }, nextCursor: next))))
    }
}
