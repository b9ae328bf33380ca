import Domains
import Foundation

/// Workspaces, people, memberships and tokens: the catalog every node shares.
public protocol CatalogRepository: Sendable {
    /// Throws a unique violation when the slug is taken.
    func createWorkspace(slug: String, name: String, createdByToken: String?) async throws -> Workspace
    func workspace(slug: String) async throws -> Workspace?
    func workspace(id: String) async throws -> Workspace?
    func workspaces(ids: [String]) async throws -> [Workspace]
    func upsertUser(email: String, name: String?) async throws -> User
    /// Makes the user a member with at least `role` (never lowers an existing role).
    func setMembership(workspaceID: String, userID: String, role: Role) async throws
    /// With `audit`, the token's workspace records who minted it, in the same transaction.
    func createToken(_ token: NewToken, audit: AuditActor?) async throws -> (info: TokenInfo, secret: String)
    func token(id: String) async throws -> TokenInfo?
    func tokens(workspaceID: String) async throws -> [TokenInfo]
    /// Nil when no such token exists in the workspace.
    func revokeToken(id: String, workspaceID: String, by actor: AuditActor?) async throws -> TokenInfo?
    /// Removes the token for good; false when the workspace has none with this id.
    func deleteToken(id: String, workspaceID: String, by actor: AuditActor?) async throws -> Bool
    /// Stores when tokens were last used; a later time already stored is kept.
    func recordTokenUse(ids: [String], at times: [Date]) async throws
    /// The identity of a live token with this secret hash, with its grants; nil when none.
    func resolve(secretHash: String) async throws -> Identity?
}
