import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listDefects(_ input: Operations.ListDefects.Input) async throws -> Operations.ListDefects.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 50)
        let before = try input.query.cursor.flatMap { try Cursor.decodeID($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let status = input.query.status.flatMap { DefectStatus(rawValue: $0.rawValue) }
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.defects(project: project, status: status, before: before, limit: size + 1)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(id: $0.id) }
        return .ok(.init(body: .json(.init(items: page.map { .init($0, project: project) }, nextCursor: next))))
    }

    func createDefect(_ input: Operations.CreateDefect.Input) async throws -> Operations.CreateDefect.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let change = try Self.change(
            title: body.title, externalUrl: body.externalUrl, status: body.status, cases: body.cases,
            failureGroups: body.failureGroups)
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireWrite(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.createDefect(project: project, change: change, by: RequestOrigin.actor(identity))
        }
        return .created(.init(body: .json(.init(record, project: project))))
    }

    func getDefect(_ input: Operations.GetDefect.Input) async throws -> Operations.GetDefect.Output {
        let identity = try RequestIdentity.required()
        let (_, project, record) = try await findDefect(identity, id: input.path.defectId)
        return .ok(.init(body: .json(.init(record, project: project))))
    }

    func updateDefect(_ input: Operations.UpdateDefect.Input) async throws -> Operations.UpdateDefect.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let change = try Self.change(
            title: body.title, externalUrl: body.externalUrl, status: body.status, cases: body.cases,
            failureGroups: body.failureGroups)
        let (grant, project, _) = try await findDefect(identity, id: input.path.defectId)
        try requireWrite(grant)
        let record = try await deps.registry.withWorkspace(grant) {
            try await $0.updateDefect(id: input.path.defectId, project: project, change: change, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(record, project: project))))
    }

    func findDefect(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, Project, DefectRecord) {
        guard ResourceID.isValid(id, prefix: .defect) else { throw DomainError.notFound("defect '\(id)' not found") }
        for grant in identity.grants {
            guard let (project, record) = try await deps.registry.withWorkspace(grant, { try await $0.defectWithProject(id: id) }),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            else { continue }
            return (grant, project, record)
        }
        throw DomainError.notFound("defect '\(id)' not found")
    }

    /// The change a create or update body asks for (an empty `externalUrl` clears it), checked for
    /// the problems it shows on its own, before anything is looked up.
    static func change(
        title: String?, externalUrl: String?, status: Components.Schemas.DefectStatus?, cases: [String]?,
        failureGroups: [String]?
    ) throws -> DefectChange {
        let change = DefectChange(
            title: title, externalURL: externalUrl.map { $0.isEmpty ? nil : $0 },
            status: status.flatMap { DefectStatus(rawValue: $0.rawValue) }, caseIDs: cases, fingerprints: failureGroups)
        try checkShape(change)
        return change
    }

    static func checkShape(_ change: DefectChange) throws {
        var problems: [FieldProblem] = []
        if let title = change.title {
            let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || title.unicodeScalars.count > 500 {
                problems.append(.init(pointer: "/title", message: "must be 1–500 characters, not only spaces"))
            }
        }
        if case .some(.some(let url)) = change.externalURL {
            if url.unicodeScalars.count > 2000 || !Self.isTrackerURL(url) {
                problems.append(.init(pointer: "/externalUrl", message: "must be an http(s) URL of at most 2000 characters"))
            }
        }
        if let cases = change.caseIDs, cases.count > 1000 {
            problems.append(.init(pointer: "/cases", message: "at most 1000 cases"))
        }
        if let groups = change.fingerprints, groups.count > 100 {
            problems.append(.init(pointer: "/failureGroups", message: "at most 100 failure groups"))
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
    }
}

extension Components.Schemas.Defect {
    init(_ d: DefectRecord, project: Project) {
        self.init(
            id: d.id, project: .init(id: project.id, slug: project.slug), title: d.title,
            externalUrl: d.externalURL.map { OpenAPIValueContainer(stringLiteral: $0) } ?? nil, status: .init(d.status),
            createdBy: d.createdBy, createdAt: d.createdAt, updatedBy: d.updatedBy, updatedAt: d.updatedAt,
            cases: d.cases.map { .init(caseId: $0.id, name: $0.name) },
            failureGroups: d.failureGroups.map {
                .init(fingerprint: $0.fingerprint, errorType: $0.errorType, sampleMessage: $0.sampleMessage)
            },
            affectedRuns: d.affectedRuns,
            lastAffectedRunId: d.lastAffectedRunID.map { OpenAPIValueContainer(stringLiteral: $0) } ?? nil,
            lastAffectedAt: .timestamp(d.lastAffectedAt))
    }
}

extension KaizenAPI {
    /// `http(s)://host[/?#…]` with no whitespace or control characters: the rule the OpenAPI
    /// document states as a pattern, checked the same way here.
    static func isTrackerURL(_ url: String) -> Bool {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") { rest = url.dropFirst(8) } else if lower.hasPrefix("http://") { rest = url.dropFirst(7) } else { return false }
        func isPlain(_ c: Unicode.Scalar) -> Bool { !(c.value <= 0x20 || c.value == 0x7F || c.properties.isWhitespace) }
        guard rest.unicodeScalars.allSatisfy(isPlain) else { return false }
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return !host.isEmpty
    }
}
