import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        let health = await deps.registry.storageHealth()
        let servers = health.servers.map { server in
            Components.Schemas.ServerHealth(
                index: server.index, status: server.problem == nil ? .ok : .unavailable, shards: server.shards)
        }
        if let down = health.servers.first(where: { $0.problem != nil }) {
            // Anonymous callers learn which server is down, not where it is or what it said.
            deps.logger.warning("health check: database server \(down.index) failed: \(down.problem ?? "")")
            let encoded = try JSONEncoder().encode(servers)
            let details = try JSONDecoder().decode(JSONValue.self, from: encoded)
            let catalogDown = health.servers.first { $0.index == 0 }?.problem != nil
            throw DomainError.unavailable(
                "database server \(down.index) does not answer\(down.index == 0 ? " (it holds the catalog)" : "")",
                details: ["catalog": .string(catalogDown ? "unavailable" : "ok"), "servers": details])
        }
        return .ok(
            .init(body: .json(.init(status: .ok, catalog: .ok, servers: servers, workspaceActors: deps.registry.count))))
    }

    func getVersion(_ input: Operations.GetVersion.Input) async throws -> Operations.GetVersion.Output {
        .ok(.init(body: .json(.init(name: "kaizen", version: deps.version, apiVersion: "v1"))))
    }

    func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws
        -> Operations.GetOpenAPIDocument.Output
    {
        let payload = try JSONDecoder().decode(
            Operations.GetOpenAPIDocument.Output.Ok.Body.JsonPayload.self, from: deps.document.json)
        return .ok(.init(body: .json(payload)))
    }

    func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let identity = try RequestIdentity.required()
        let token = try await deps.directory.token(id: identity.tokenID)
        return .ok(
            .init(
                body: .json(
                    .init(
                        token: .init(id: identity.tokenID, _class: .init(identity.tokenClass), expiresAt: token?.expiresAt),
                        user: token?.user.map(Components.Schemas.UserRef.init),
                        csrfToken: identity.isSignInSession ? deps.sessions.csrfToken(sessionTokenID: identity.tokenID) : nil,
                        workspaces: identity.grants.map {
                            .init(id: $0.workspaceID, slug: $0.workspaceSlug, role: .init($0.role))
                        }))))
    }
}

extension Components.Schemas.Role {
    init(_ role: Role) {
        switch role {
        case .owner: self = .owner
        case .admin: self = .admin
        case .member: self = .member
        case .viewer: self = .viewer
        }
    }

    var domain: Role {
        switch self {
        case .owner: .owner
        case .admin: .admin
        case .member: .member
        case .viewer: .viewer
        }
    }
}

extension Components.Schemas.TokenClass {
    init(_ tokenClass: TokenClass) {
        switch tokenClass {
        case .workspace: self = .workspace
        case .user: self = .user
        }
    }
}

extension Components.Schemas.UserRef {
    init(_ user: User) {
        self.init(id: user.id, email: user.email, name: user.name)
    }
}
