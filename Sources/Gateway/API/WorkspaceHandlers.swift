import Domains
import OpenAPIRuntime
import Storage

extension KaizenAPI {
    func listWorkspaces(_ input: Operations.ListWorkspaces.Input) async throws -> Operations.ListWorkspaces.Output {
        let identity = try RequestIdentity.required()
        let workspaces = try await deps.cluster.catalog.workspaces(ids: identity.grants.map(\.workspaceID))
        let items = workspaces.compactMap { workspace in
            identity.grant(workspaceID: workspace.id).map { Components.Schemas.Workspace(workspace, role: $0.role) }
        }
        return .ok(.init(body: .json(items)))
    }

    func createWorkspace(_ input: Operations.CreateWorkspace.Input) async throws -> Operations.CreateWorkspace.Output {
        let identity = try RequestIdentity.required()
        guard identity.tokenClass == .user, let userID = identity.userID else {
            throw APIError.forbidden(
                "workspace tokens are bound to one workspace and cannot create workspaces; use a user token or `kaizen workspace create`")
        }
        switch deps.workspaceCreation {
        case .operators:
            throw APIError.forbidden("on this server only operators create workspaces (`kaizen workspace create`)")
        case .members:
            // A viewer-only token must not make its holder an admin somewhere.
            guard identity.grants.contains(where: { $0.role.canWrite }) else {
                throw APIError.forbidden("creating a workspace needs a role above viewer in one of your workspaces")
            }
        }
        guard case .json(let body) = input.body else { throw APIError.badRequest("expected application/json") }
        var problems: [FieldProblem] = []
        if let problem = Slug.problem(body.slug) { problems.append(.init(pointer: "/slug", message: problem)) }
        if body.name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || body.name.unicodeScalars.count > 200 {
            problems.append(.init(pointer: "/name", message: "must be 1–200 characters"))
        }
        if !problems.isEmpty { throw APIError.validation(problems) }
        let workspace: Workspace
        do {
            workspace = try await deps.cluster.catalog.createWorkspace(
                slug: body.slug, name: body.name, createdByToken: identity.tokenID)
        } catch StorageError.uniqueViolation {
            throw APIError.conflict("a workspace with slug '\(body.slug)' already exists", details: ["pointer": "/slug"])
        }
        try await deps.cluster.catalog.setMembership(workspaceID: workspace.id, userID: userID, role: .admin)
        deps.authenticator.invalidate { $0.userID == userID || $0.tokenID == identity.tokenID }
        return .created(.init(body: .json(.init(workspace, role: .admin))))
    }

    func getWorkspace(_ input: Operations.GetWorkspace.Input) async throws -> Operations.GetWorkspace.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        guard let workspace = try await deps.cluster.catalog.workspace(id: grant.workspaceID) else {
            throw APIError.notFound("workspace '\(input.path.workspace)' not found")
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
        let server = try deps.cluster.server(forShard: grant.shardID)
        let jobs = try await JobQueue(server: server, logger: deps.logger)
            .jobs(workspaceID: grant.workspaceID, state: input.query.state?.rawValue, limit: limit)
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
