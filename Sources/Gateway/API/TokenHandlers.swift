import Domains
import Foundation
import OpenAPIRuntime
import Storage

extension KaizenAPI {
    func listTokens(_ input: Operations.ListTokens.Input) async throws -> Operations.ListTokens.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        let tokens = try await deps.cluster.catalog.tokens(workspaceID: grant.workspaceID)
        return .ok(.init(body: .json(tokens.map { .init($0, workspace: grant) })))
    }

    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        guard case .json(let body) = input.body else { throw APIError.badRequest("expected application/json") }

        var problems: [FieldProblem] = []
        if let problem = TokenRules.validateName(body.name) { problems.append(problem) }
        switch body._class {
        case .workspace:
            if body.role == nil { problems.append(.init(pointer: "/role", message: "is required for workspace tokens")) }
            if body.user != nil { problems.append(.init(pointer: "/user", message: "is only for user tokens")) }
            if body.ttlSeconds != nil {
                problems.append(.init(pointer: "/ttlSeconds", message: "is only for user tokens; workspace tokens do not expire"))
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
        if !problems.isEmpty { throw APIError.validation(problems) }
        // A credential never carries more than its issuer could do: not a role above the minter's own.
        let role = body.role?.domain ?? .member
        if role > grant.role {
            throw APIError.forbidden(
                "a token cannot grant the role '\(role.rawValue)', which is above yours ('\(grant.role.rawValue)') in workspace '\(grant.workspaceSlug)'")
        }

        let catalog = deps.cluster.catalog
        let created: (info: TokenInfo, secret: String)
        switch body._class {
        case .workspace:
            created = try await catalog.createToken(
                .init(
                    name: body.name, tokenClass: .workspace, workspaceID: grant.workspaceID, role: role,
                    userID: nil, createdBy: identity.tokenID, expiresAt: nil))
        case .user:
            guard let userInput = body.user else { throw APIError.validation(pointer: "/user", "is required for user tokens") }
            let user = try await catalog.upsertUser(email: userInput.email.lowercased(), name: userInput.name)
            try await catalog.setMembership(workspaceID: grant.workspaceID, userID: user.id, role: role)
            deps.authenticator.invalidate { $0.userID == user.id }
            let ttl = body.ttlSeconds ?? TokenRules.defaultUserTTLSeconds
            // Scoped to this workspace and capped at `role`: never the person's other memberships.
            created = try await catalog.createToken(
                .init(
                    name: body.name, tokenClass: .user, workspaceID: grant.workspaceID, role: role, userID: user.id,
                    createdBy: identity.tokenID, expiresAt: Date().addingTimeInterval(TimeInterval(ttl))))
        }
        let token = Components.Schemas.Token(created.info, workspace: grant)
        return .created(.init(body: .json(.init(value1: token, value2: .init(secret: created.secret)))))
    }

    func revokeToken(_ input: Operations.RevokeToken.Input) async throws -> Operations.RevokeToken.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        try requireAdmin(grant)
        let id = input.path.tokenId
        guard ResourceID.isValid(id, prefix: .token),
            let token = try await deps.cluster.catalog.revokeToken(id: id, workspaceID: grant.workspaceID)
        else {
            throw APIError.notFound("token '\(id)' not found in workspace '\(grant.workspaceSlug)'")
        }
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
            expiresAt: token.expiresAt, revokedAt: token.revokedAt)
    }
}
