import Domains
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listWorkspaces(_ input: Operations.ListWorkspaces.Input) async throws -> Operations.ListWorkspaces.Output {
        let identity = try RequestIdentity.required()
        let items = try await deps.directory.workspaces(of: identity).map { Components.Schemas.Workspace($0, role: $1) }
        return .ok(.init(body: .json(items)))
    }

    func createWorkspace(_ input: Operations.CreateWorkspace.Input) async throws -> Operations.CreateWorkspace.Output {
        let identity = try RequestIdentity.required()
        guard identity.tokenClass == .user, let userID = identity.userID else {
            throw DomainError.forbidden(
                "workspace tokens are bound to one workspace and cannot create workspaces; use a user token or `kaizen workspace create`")
        }
        switch deps.workspaceCreation {
        case .operators:
            throw DomainError.forbidden("on this server only operators create workspaces (`kaizen workspace create`)")
        case .members:
            // A viewer-only token must not make its holder an admin somewhere.
            guard identity.grants.contains(where: { $0.role.canWrite }) else {
                throw DomainError.forbidden("creating a workspace needs a role above viewer in one of your workspaces")
            }
        }
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        var problems: [FieldProblem] = []
        if let problem = Slug.problem(body.slug) { problems.append(.init(pointer: "/slug", message: problem)) }
        if body.name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || body.name.unicodeScalars.count > 200 {
            problems.append(.init(pointer: "/name", message: "must be 1–200 characters"))
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let workspace = try await deps.directory.createWorkspace(slug: body.slug, name: body.name, by: identity, userID: userID)
        deps.authenticator.invalidate { $0.userID == userID || $0.tokenID == identity.tokenID }
        return .created(.init(body: .json(.init(workspace, role: .admin))))
    }

    func getWorkspace(_ input: Operations.GetWorkspace.Input) async throws -> Operations.GetWorkspace.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        guard let workspace = try await deps.directory.workspace(id: grant.workspaceID) else {
            throw DomainError.notFound("workspace '\(input.path.workspace)' not found")
        }
        return .ok(.init(body: .json(.init(workspace, role: grant.role))))
    }
}

extension Components.Schemas.Workspace {
    init(_ workspace: Workspace, role: Role) {
        self.init(id: workspace.id, slug: workspace.slug, name: workspace.name, role: .init(role), createdAt: workspace.createdAt)
    }
}

extension KaizenAPI {
    func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        let limit = try pageSize(input.query.limit, default: 100)
        let state = input.query.state?.rawValue
        let jobs = try await deps.registry.withWorkspace(grant) { try await $0.jobs(state: state, limit: limit) }
        return .ok(
            .init(
                body: .json(
                    jobs.map {
                        .init(
                            id: $0.id, kind: $0.kind, state: .init(rawValue: $0.state) ?? .queued, attempts: $0.attempts,
                            maxAttempts: $0.maxAttempts, runAfter: $0.runAfter, lastError: $0.lastError,
                            createdAt: $0.createdAt)
                    })))
    }
}
