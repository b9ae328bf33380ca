import Domains
import Foundation

/// Accounts, sign-in sessions, one-time links, members, invitations and the catalog's part of the audit
/// log. Every change that is audited writes its audit row in the same catalog transaction.
public protocol AccountRepository: Sendable {
    // Accounts
    /// Creates the account, or finds the one with this email (case-insensitive); `created` says which.
    func ensureAccount(email: String, name: String?, isOperator: Bool) async throws -> (account: Account, created: Bool)
    func account(id: String) async throws -> Account?
    /// The account with this email (case-insensitive) and its password hash.
    func credentials(email: String) async throws -> (account: Account, passwordHash: String?)?
    func passwordHash(userID: String) async throws -> String?
    /// Operators' listing: accounts by last sign-in (never signed in last), then email.
    func accounts(limit: Int, offset: Int) async throws -> [Account]

    // Links
    func createLink(userID: String, purpose: AccountLinkPurpose, secretHash: String, expiresAt: Date) async throws
    /// The account an unused, unexpired link is for; nil otherwise.
    func linkTarget(secretHash: String) async throws -> (linkID: String, purpose: AccountLinkPurpose, account: Account)?
    /// Uses the link (once: false when it was used or expired meanwhile), sets the password, and ends the
    /// account's sign-in sessions.
    func redeemLink(id: String, passwordHash: String) async throws -> Bool

    // Sessions
    /// A sign-in session: a user token with no issuing workspace, and the account's last sign-in time.
    func createSession(userID: String, expiresAt: Date) async throws -> (info: TokenInfo, secret: String)
    /// Ends one sign-in session of the user; false when the token is not one.
    func endSession(tokenID: String, userID: String) async throws -> Bool
    /// Replaces the password and ends every sign-in session of the account.
    func changePassword(userID: String, passwordHash: String) async throws

    // Members
    func members(workspaceID: String) async throws -> [Member]
    func member(workspaceID: String, userID: String) async throws -> Member?
    /// Changes a member's role; nil when not a member. `lastOwner` when it would leave no owner.
    func setMemberRole(workspaceID: String, userID: String, role: Role, by actor: AuditActor) async throws -> MemberChange
    /// Removes a member, ending their tokens issued by this workspace and their sign-in sessions.
    func removeMember(workspaceID: String, userID: String, by actor: AuditActor) async throws -> MemberChange
    /// Adds the user as a member (or changes the role), recording who.
    func addMember(workspaceID: String, userID: String, role: Role, by actor: AuditActor) async throws

    // Invitations
    /// An empty `email` is the first start's owner set-up link: any email, given on acceptance.
    func createInvitation(
        workspaceID: String, email: String, role: Role, secretHash: String, expiresAt: Date, grantsOperator: Bool,
        by actor: AuditActor
    ) async throws -> Invitation
    func invitations(workspaceID: String) async throws -> [Invitation]
    /// Nil when the workspace has no such invitation; revoking an accepted or revoked one changes nothing.
    func revokeInvitation(id: String, workspaceID: String, by actor: AuditActor) async throws -> Invitation?
    /// A pending invitation with this secret and its workspace.
    func invitationTarget(secretHash: String) async throws -> (invitation: Invitation, workspace: Workspace)?
    /// Accepts a pending invitation for `email` (once: false when it was accepted, revoked or expired
    /// meanwhile): the account is created with `newPasswordHash` when there is none, and becomes a member.
    func acceptInvitation(
        id: String, email: String, name: String?, newPasswordHash: String?, clientAddress: String?, requestID: String?
    ) async throws -> (accepted: Bool, account: Account?)

    // Audit
    func recordAudit(_ event: NewAuditEvent) async throws
    func auditEvents(workspaceID: String, filter: AuditFilter, limit: Int) async throws -> [AuditEvent]
}

public enum MemberChange: Sendable, Equatable {
    case changed(Member?)
    case notMember
    case lastOwner
}

/// What an audit row says, before it has an id and a time.
public struct NewAuditEvent: Sendable {
    public let workspaceID: String
    public let actor: AuditActor
    public let action: String
    public let targetType: String
    public let targetID: String
    public let details: [String: JSONValue]

    public init(
        workspaceID: String, actor: AuditActor, action: String, targetType: String, targetID: String,
        details: [String: JSONValue] = [:]
    ) {
        self.workspaceID = workspaceID
        self.actor = actor
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.details = details
    }
}

/// Filters of the audit listing, newest first; `beforeID` is the cursor (audit ids are time-ordered).
public struct AuditFilter: Sendable, Equatable {
    public var actorID: String?
    public var action: String?
    public var targetType: String?
    public var targetID: String?
    public var since: Date?
    public var until: Date?
    public var beforeID: String?

    public init() {}
}
