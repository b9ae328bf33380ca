import Domains
import Foundation

/// Workspace-less use cases: the catalog of workspaces, people, memberships and tokens. Every write is one
/// catalog transaction; nothing here is cached (the gateway's `Authenticator` caches resolved identities).
public struct Directory: Sendable {
    let catalog: any CatalogRepository

    public init(catalog: any CatalogRepository) {
        self.catalog = catalog
    }

    /// The caller's workspaces, with the role the caller holds in each.
    public func workspaces(of identity: Identity) async throws -> [(Workspace, Role)] {
        try await catalog.workspaces(ids: identity.grants.map(\.workspaceID)).compactMap { workspace in
            identity.grant(workspaceID: workspace.id).map { (workspace, $0.role) }
        }
    }

    public func workspace(id: String) async throws -> Workspace? {
        try await catalog.workspace(id: id)
    }

    /// Creates a workspace whose first owner is the caller's person; a conflict when the slug is taken.
    public func createWorkspace(slug: String, name: String, by identity: Identity, userID: String) async throws
        -> Workspace
    {
        let workspace: Workspace
        do {
            workspace = try await catalog.createWorkspace(slug: slug, name: name, createdByToken: identity.tokenID)
        } catch let error as DomainError where error.isUniqueViolation {
            throw DomainError.conflict("a workspace with slug '\(slug)' already exists", details: ["pointer": "/slug"])
        }
        try await catalog.setMembership(workspaceID: workspace.id, userID: userID, role: .owner)
        return workspace
    }

    public func token(id: String) async throws -> TokenInfo? {
        try await catalog.token(id: id)
    }

    public func tokens(in grant: WorkspaceGrant) async throws -> [TokenInfo] {
        try await catalog.tokens(workspaceID: grant.workspaceID)
    }

    /// Mints a token bound to the grant's workspace. A credential never carries more than its issuer could do:
    /// `role` above the minter's own is forbidden.
    /// With `ttlSeconds` the token expires then; without, it lives until revoked or deleted.
    public func mintWorkspaceToken(
        name: String, role: Role, ttlSeconds: Int? = nil, in grant: WorkspaceGrant, by identity: Identity, audit: AuditActor,
        now: Date = Date()
    ) async throws -> (info: TokenInfo, secret: String) {
        try checkRole(role, grant: grant)
        return try await catalog.createToken(
            NewToken(
                name: name, tokenClass: .workspace, workspaceID: grant.workspaceID, role: role, userID: nil,
                createdBy: identity.tokenID, expiresAt: ttlSeconds.map { now.addingTimeInterval(TimeInterval($0)) }),
            audit: audit)
    }

    /// Mints a user token for a person (created on first use), making them a member of the grant's workspace
    /// with `role`. The token is confined to this workspace and capped at `role`: never the person's other
    /// memberships. Returns the person's id, whose cached identities are now stale.
    public func mintUserToken(
        name: String, email: String, personName: String?, role: Role, ttlSeconds: Int, in grant: WorkspaceGrant,
        by identity: Identity, audit: AuditActor, now: Date = Date()
    ) async throws -> (info: TokenInfo, secret: String, userID: String) {
        try checkRole(role, grant: grant)
        let user = try await catalog.upsertUser(email: email.lowercased(), name: personName)
        try await catalog.setMembership(workspaceID: grant.workspaceID, userID: user.id, role: role)
        let created = try await catalog.createToken(
            NewToken(
                name: name, tokenClass: .user, workspaceID: grant.workspaceID, role: role, userID: user.id,
                createdBy: identity.tokenID, expiresAt: now.addingTimeInterval(TimeInterval(ttlSeconds))),
            audit: audit)
        return (created.info, created.secret, user.id)
    }

    func checkRole(_ role: Role, grant: WorkspaceGrant) throws {
        if role > grant.role {
            throw DomainError.forbidden(
                "a token cannot grant the role '\(role.rawValue)', which is above yours ('\(grant.role.rawValue)') in workspace '\(grant.workspaceSlug)'")
        }
    }

    /// Revokes a token of the grant's workspace; `notFound` when it has none with this id.
    public func revokeToken(id: String, in grant: WorkspaceGrant, audit: AuditActor) async throws -> TokenInfo {
        guard ResourceID.isValid(id, prefix: .token),
            let token = try await catalog.revokeToken(id: id, workspaceID: grant.workspaceID, by: audit)
        else { throw DomainError.notFound("token '\(id)' not found in workspace '\(grant.workspaceSlug)'") }
        return token
    }

    /// Deletes a token of the grant's workspace for good; `notFound` when it has none with this id.
    public func deleteToken(id: String, in grant: WorkspaceGrant, audit: AuditActor) async throws {
        guard ResourceID.isValid(id, prefix: .token), try await catalog.deleteToken(id: id, workspaceID: grant.workspaceID, by: audit)
        else { throw DomainError.notFound("token '\(id)' not found in workspace '\(grant.workspaceSlug)'") }
    }

    /// Stores when tokens were last used (see `Authenticator.drainUses`).
    public func recordTokenUse(_ uses: [(tokenID: String, at: Date)]) async throws {
        try await catalog.recordTokenUse(ids: uses.map(\.tokenID), at: uses.map(\.at))
    }

    /// The identity of a live token with this secret hash; nil when none.
    public func resolve(secretHash: String) async throws -> Identity? {
        try await catalog.resolve(secretHash: secretHash)
    }
}
