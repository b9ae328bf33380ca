import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func listTokens(_ input: Operations.ListTokens.Input) async throws -> Operations.ListTokens.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        let tokens = try await deps.directory.tokens(in: grant)
        return .ok(.init(body: .json(tokens.map { .init($0, workspace: grant) })))
    }

    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }

        var problems: [FieldProblem] = []
        if let problem = TokenRules.validateName(body.name) { problems.append(problem) }
        switch body._class {
        case .workspace:
            if body.role == nil { problems.append(.init(pointer: "/role", message: "is required for workspace tokens")) }
            if body.user != nil { problems.append(.init(pointer: "/user", message: "is only for user tokens")) }
            if let ttl = body.ttlSeconds, ttl < 60 || ttl > TokenRules.maxWorkspaceTTLSeconds {
                problems.append(.init(pointer: "/ttlSeconds", message: "must be between 60 and \(TokenRules.maxWorkspaceTTLSeconds) for workspace tokens"))
            }
        case .user:
            if let user = body.user {
                if let problem = TokenRules.validateEmail(user.email, pointer: "/user/email") { problems.append(problem) }
                if let name = user.name, name.unicodeScalars.count > 200 {
                    problems.append(.init(pointer: "/user/name", message: "must be at most 200 characters"))
                }
            } else {
                problems.append(.init(pointer: "/user", message: "is required for user tokens"))
            }
            if let ttl = body.ttlSeconds, ttl < 60 || ttl > TokenRules.maxUserTTLSeconds {
                problems.append(.init(pointer: "/ttlSeconds", message: "must be between 60 and \(TokenRules.maxUserTTLSeconds)"))
            }
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let role = body.role?.domain ?? .member
        let created: (info: TokenInfo, secret: String)
        switch body._class {
        case .workspace:
            created = try await deps.directory.mintWorkspaceToken(
                name: body.name, role: role, ttlSeconds: body.ttlSeconds, in: grant, by: identity,
                audit: RequestOrigin.actor(identity))
        case .user:
            guard let user = body.user else { throw DomainError.validation(pointer: "/user", "is required for user tokens") }
            let minted = try await deps.directory.mintUserToken(
                name: body.name, email: user.email, personName: user.name, role: role,
                ttlSeconds: body.ttlSeconds ?? TokenRules.defaultUserTTLSeconds, in: grant, by: identity,
                audit: RequestOrigin.actor(identity))
            deps.authenticator.invalidate { $0.userID == minted.userID }
            created = (minted.info, minted.secret)
        }
        let token = Components.Schemas.Token(created.info, workspace: grant)
        return .created(.init(body: .json(.init(value1: token, value2: .init(secret: created.secret)))))
    }

    func revokeToken(_ input: Operations.RevokeToken.Input) async throws -> Operations.RevokeToken.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        let id = input.path.tokenId
        if input.query.action == .delete {
            try await deps.directory.deleteToken(id: id, in: grant, audit: RequestOrigin.actor(identity))
            deps.authenticator.invalidate { $0.tokenID == id }
            return .noContent(.init())
        }
        let token = try await deps.directory.revokeToken(id: id, in: grant, audit: RequestOrigin.actor(identity))
        deps.authenticator.invalidate { $0.tokenID == id }
        return .ok(.init(body: .json(.init(token, workspace: grant))))
    }
}

extension Components.Schemas.Token {
    init(_ token: TokenInfo, workspace: WorkspaceGrant) {
        self.init(
            id: token.id, name: token.name, _class: .init(token.tokenClass), hint: token.hint,
            role: token.role.map(Components.Schemas.Role.init),
            workspace: .init(id: workspace.workspaceID, slug: workspace.workspaceSlug),
            user: token.user.map(Components.Schemas.UserRef.init), createdAt: token.createdAt,
            expiresAt: token.expiresAt, revokedAt: token.revokedAt, lastUsedAt: token.lastUsedAt)
    }
}
