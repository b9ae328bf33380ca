import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listProjects(_ input: Operations.ListProjects.Input) async throws -> Operations.ListProjects.Output {
        let identity = try RequestIdentity.required()
        let grants = try input.query.workspace.map { [try grant(identity, workspace: $0)] } ?? identity.grants
        let registry = deps.registry
        // Workspaces may live on different servers: ask their actors concurrently.
        let perWorkspace = try await withThrowingTaskGroup(of: (Int, [Project], [String: ProjectStatsRecord]).self) { group in
            for (index, grant) in grants.enumerated() {
                group.addTask {
                    try await registry.withWorkspace(grant) { workspace in
                        let projects = try await workspace.projects()
                        let visible = projects.filter { $0.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass) }
                        let stats = visible.isEmpty ? [:] : try await workspace.projectStats()
                        return (index, visible, stats)
                    }
                }
            }
            var result = [([Project], [String: ProjectStatsRecord])](repeating: ([], [:]), count: grants.count)
            for try await (index, projects, stats) in group { result[index] = (projects, stats) }
            return result
        }
        var items: [Components.Schemas.Project] = []
        for (grant, (projects, stats)) in zip(grants, perWorkspace) {
            items += projects.map { Components.Schemas.Project($0, workspace: grant, stats: stats[$0.id]) }
        }
        return .ok(.init(body: .json(items)))
    }

    func createProject(_ input: Operations.CreateProject.Input) async throws -> Operations.CreateProject.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let grant = try targetGrant(identity, workspace: body.workspace, pointer: "/workspace")
        try requireWrite(grant)
        let branch = body.defaultBranch ?? "main"
        let problems = ProjectRules.validate(slug: body.slug, name: body.name, defaultBranch: branch)
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let mode: AccessMode = body.accessMode == ._private ? .private : .team
        let project = try await deps.registry.withWorkspace(grant) {
            try await $0.createProject(
                slug: body.slug, name: body.name, accessMode: mode, defaultBranch: branch, by: RequestOrigin.actor(identity))
        }
        return .created(.init(body: .json(.init(project, workspace: grant))))
    }

    func getProject(_ input: Operations.GetProject.Input) async throws -> Operations.GetProject.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let overview = try await deps.registry.withWorkspace(grant) { try await $0.overview(of: project) }
        let (stats, history, defects) = (overview.stats, overview.history, overview.defectCounts)
        let detail = Components.Schemas.ProjectDetail(
            value1: .init(project, workspace: grant, stats: stats),
            value2: .init(
                extendedStats: .init(
                    historyRange: .init(
                        firstRunAt: .timestamp(history.firstRunAt), lastRunAt: .timestamp(history.lastRunAt),
                        runCount: history.runCount),
                    topFailingSuites: history.topFailingSuites.map { .init(suite: $0.suite, failures: $0.failures) },
                    defects: .init(
                        open: defects[.open] ?? 0, acknowledged: defects[.acknowledged] ?? 0,
                        resolved: defects[.resolved] ?? 0, falsePositive: defects[.falsePositive] ?? 0))))
        return .ok(.init(body: .json(detail)))
    }
}

extension Components.Schemas.Project {
    /// `lastRunAt` and `passRate30d` are null until the project has runs.
    init(_ project: Project, workspace: WorkspaceGrant, stats: ProjectStatsRecord? = nil) {
        self.init(
            id: project.id, slug: project.slug, name: project.name,
            workspace: .init(id: workspace.workspaceID, slug: workspace.workspaceSlug),
            accessMode: project.accessMode == .private ? ._private : .team, defaultBranch: project.defaultBranch,
            createdAt: project.createdAt,
            stats: .init(
                lastRunAt: .timestamp(stats?.lastRunAt), passRate30d: .number(stats?.passRate30d),
                flakyCount: stats?.flakyCount ?? 0))
    }
}

extension OpenAPIValueContainer {
    /// JSON `null`, for required fields that have no value yet (see `OpenAPIDocument.expandNullable`).
    static let null: OpenAPIValueContainer = nil

    /// An RFC 3339 timestamp, or `null`.
    static func timestamp(_ date: Date?) -> OpenAPIValueContainer {
        guard let date else { return nil }
        return OpenAPIValueContainer(stringLiteral: date.formatted(.iso8601))
    }

    /// A number, or `null`.
    static func number(_ value: Double?) -> OpenAPIValueContainer {
        guard let value else { return nil }
        return OpenAPIValueContainer(floatLiteral: value)
    }
}
