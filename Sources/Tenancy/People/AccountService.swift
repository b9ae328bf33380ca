import Domains
import Foundation

/// People's use cases: accounts and their one-time links, sign-in sessions, workspace members and
/// invitations, the audit log. All of it lives in the catalog; nothing is cached here (the gateway's
/// `Authenticator` caches identities and is told of every change through the identity feed).
public struct AccountService: Sendable {
    let repository: any AccountRepository
    let passwords: any PasswordHasher
    public let sessionSeconds: Int
    let now: @Sendable () -> Date

    public init(
        repository: any AccountRepository, passwords: any PasswordHasher, sessionSeconds: Int = TokenRules.defaultUserTTLSeconds,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.repository = repository
        self.passwords = passwords
        self.sessionSeconds = sessionSeconds
        self.now = now
    }

    // MARK: accounts and links

    /// `kaizen user create`: the account (created when new) and a one-time set-password link's secret. An
    /// account that already has a password gets none (a conflict: that is what `reset-password` is for).
    public func createAccount(email: String, name: String?, isOperator: Bool = false) async throws
        -> (account: Account, linkSecret: String)
    {
        var problems: [FieldProblem] = []
        if let problem = TokenRules.validateEmail(email, pointer: "/email") { problems.append(problem) }
        if let name, name.unicodeScalars.count > AccountRules.maxNameLength {
            problems.append(.init(pointer: "/name", message: "must be at most \(AccountRules.maxNameLength) characters"))
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        let (account, _) = try await repository.ensureAccount(email: email.lowercased(), name: name, isOperator: isOperator)
        if account.hasPassword {
            throw DomainError.conflict("\(account.email) already has a password; use `kaizen user reset-password`")
        }
        let secret = LinkSecret.generate()
        try await repository.createLink(
            userID: account.id, purpose: .setPassword, secretHash: LinkSecret.hash(secret),
            expiresAt: now().addingTimeInterval(TimeInterval(AccountRules.setPasswordLinkSeconds)))
        return (account, secret)
    }

    /// `kaizen user reset-password`: a one-time link (a day) that replaces the password.
    public func resetPasswordLink(email: String) async throws -> (account: Account, linkSecret: String) {
        guard let (account, _) = try await repository.credentials(email: email.lowercased()) else {
            throw DomainError.notFound("no account has the email \(email)")
        }
        let secret = LinkSecret.generate()
        try await repository.createLink(
            userID: account.id, purpose: .resetPassword, secretHash: LinkSecret.hash(secret),
            expiresAt: now().addingTimeInterval(TimeInterval(AccountRules.resetPasswordLinkSeconds)))
        return (account, secret)
    }

    static let invalidLink = "is not a valid link, or it was used or has expired"

    /// Sets the password a link is for. The link works once; the account's sign-in sessions end.
    public func redeemLink(_ secret: String, password: String) async throws -> Account {
        guard LinkSecret.looksValid(secret), let target = try await repository.linkTarget(secretHash: LinkSecret.hash(secret))
        else { throw DomainError.validation(pointer: "/link", Self.invalidLink) }
        if let problem = AccountRules.validatePassword(password, email: target.account.email, pointer: "/password") {
            throw DomainError.validation([problem])
        }
        let hash = try await passwords.hash(password)
        guard try await repository.redeemLink(id: target.linkID, passwordHash: hash) else {
            throw DomainError.validation(pointer: "/link", Self.invalidLink)
        }
        return target.account
    }

    // MARK: sessions

    public static let signInRefused = "the email or password is incorrect"

    /// Checks the password and opens a sign-in session. An unknown email, an account without a password and
    /// a wrong password answer alike, and take a bcrypt comparison's time alike.
    public func signIn(email: String, password: String) async throws -> (account: Account, session: TokenInfo, secret: String) {
        let found = try await repository.credentials(email: email.lowercased())
        guard password.unicodeScalars.count <= AccountRules.maxPasswordLength, let found, let hash = found.passwordHash else {
            // A hash costs what a comparison costs: the answer takes as long as for a wrong password.
            _ = try await passwords.hash(String(password.prefix(AccountRules.maxPasswordLength)))
            throw DomainError.unauthorized(Self.signInRefused)
        }
        guard try await passwords.verify(password, hash: hash) else { throw DomainError.unauthorized(Self.signInRefused) }
        let (info, secret) = try await repository.createSession(
            userID: found.account.id, expiresAt: now().addingTimeInterval(TimeInterval(sessionSeconds)))
        return (found.account, info, secret)
    }

    /// Ends the caller's sign-in session.
    public func signOut(_ identity: Identity) async throws {
        guard identity.isSignInSession, let userID = identity.userID else {
            throw DomainError.badRequest("only a sign-in session ends by logout; tokens are revoked with DELETE …/tokens/{id}")
        }
        _ = try await repository.endSession(tokenID: identity.tokenID, userID: userID)
    }

    /// Changes the caller's password (the current one proves it is them); every sign-in session ends.
    public func changePassword(_ identity: Identity, current: String, new: String) async throws {
        guard identity.isSignInSession, let userID = identity.userID, let account = try await repository.account(id: userID)
        else { throw DomainError.forbidden("a password is changed from a sign-in session (POST /v1/auth/login)") }
        guard let hash = try await repository.passwordHash(userID: userID),
            current.unicodeScalars.count <= AccountRules.maxPasswordLength,
            try await passwords.verify(current, hash: hash)
        else { throw DomainError.validation(pointer: "/currentPassword", "is not the current password") }
        if let problem = AccountRules.validatePassword(new, email: account.email, pointer: "/newPassword") {
            throw DomainError.validation([problem])
        }
        try await repository.changePassword(userID: userID, passwordHash: try await passwords.hash(new))
    }

    public func account(id: String) async throws -> Account? {
        try await repository.account(id: id)
    }

    /// Operators' listing of every account, by last sign-in.
    public func accounts(of identity: Identity, limit: Int, offset: Int) async throws -> [Account] {
        guard let userID = identity.userID, identity.isSignInSession, let me = try await repository.account(id: userID),
            me.isOperator
        else { throw DomainError.forbidden("listing accounts needs an operator's sign-in session") }
        return try await repository.accounts(limit: limit, offset: offset)
    }

    // MARK: members

    public func members(in grant: WorkspaceGrant) async throws -> [Member] {
        try await repository.members(workspaceID: grant.workspaceID)
    }

    /// Changes a member's role. Admins manage members; only owners make owners or change an owner; the last
    /// owner stays an owner.
    public func setRole(_ role: Role, of userID: String, in grant: WorkspaceGrant, by actor: AuditActor) async throws -> Member {
        try requireAdmin(grant)
        guard ResourceID.isValid(userID, prefix: .user), let current = try await repository.member(workspaceID: grant.workspaceID, userID: userID)
        else { throw DomainError.notFound("member '\(userID)' not found in workspace '\(grant.workspaceSlug)'") }
        if (role == .owner || current.role == .owner) && grant.role != .owner {
            throw DomainError.forbidden("only an owner makes owners or changes an owner's role in workspace '\(grant.workspaceSlug)'")
        }
        switch try await repository.setMemberRole(workspaceID: grant.workspaceID, userID: userID, role: role, by: actor) {
        case .changed(let member?): return member
        case .changed(nil), .notMember:
            throw DomainError.notFound("member '\(userID)' not found in workspace '\(grant.workspaceSlug)'")
        case .lastOwner:
            throw DomainError.conflict("the last owner of workspace '\(grant.workspaceSlug)' cannot be demoted; make another owner first")
        }
    }

    /// Removes a member: their grant in this workspace ends at once, with the tokens this workspace issued them.
    public func removeMember(_ userID: String, in grant: WorkspaceGrant, by actor: AuditActor) async throws {
        try requireAdmin(grant)
        guard ResourceID.isValid(userID, prefix: .user), let current = try await repository.member(workspaceID: grant.workspaceID, userID: userID)
        else { throw DomainError.notFound("member '\(userID)' not found in workspace '\(grant.workspaceSlug)'") }
        if current.role == .owner && grant.role != .owner {
            throw DomainError.forbidden("only an owner removes an owner from workspace '\(grant.workspaceSlug)'")
        }
        switch try await repository.removeMember(workspaceID: grant.workspaceID, userID: userID, by: actor) {
        case .changed: return
        case .notMember: throw DomainError.notFound("member '\(userID)' not found in workspace '\(grant.workspaceSlug)'")
        case .lastOwner:
            throw DomainError.conflict("the last owner of workspace '\(grant.workspaceSlug)' cannot be removed; make another owner first")
        }
    }

    // MARK: invitations

    /// Invites an email address with a role no higher than the inviter's; answers the one-time link's secret.
    public func invite(
        email: String, role: Role, expiresInSeconds: Int?, in grant: WorkspaceGrant, by actor: AuditActor
    ) async throws -> (invitation: Invitation, secret: String) {
        try requireAdmin(grant)
        var problems: [FieldProblem] = []
        if let problem = TokenRules.validateEmail(email, pointer: "/email") { problems.append(problem) }
        if let seconds = expiresInSeconds, seconds < 60 || seconds > AccountRules.maxInvitationSeconds {
            problems.append(.init(pointer: "/expiresInSeconds", message: "must be between 60 and \(AccountRules.maxInvitationSeconds)"))
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        if role > grant.role {
            throw DomainError.forbidden(
                "an invitation cannot grant the role '\(role.rawValue)', which is above yours ('\(grant.role.rawValue)') in workspace '\(grant.workspaceSlug)'")
        }
        let secret = LinkSecret.generate()
        let invitation = try await repository.createInvitation(
            workspaceID: grant.workspaceID, email: email.lowercased(), role: role, secretHash: LinkSecret.hash(secret),
            expiresAt: now().addingTimeInterval(TimeInterval(expiresInSeconds ?? AccountRules.invitationSeconds)),
            grantsOperator: false, by: actor)
        return (invitation, secret)
    }

    /// The first start's owner set-up link for a workspace: an owner invitation for whoever accepts it first
    /// (their email is given then), who also becomes an operator.
    public func ownerSetupLink(workspaceID: String) async throws -> String {
        let secret = LinkSecret.generate()
        _ = try await repository.createInvitation(
            workspaceID: workspaceID, email: "", role: .owner, secretHash: LinkSecret.hash(secret),
            expiresAt: now().addingTimeInterval(TimeInterval(AccountRules.maxInvitationSeconds)), grantsOperator: true,
            by: .operatorCommand("kaizen-first-start"))
        return secret
    }

    public func invitations(in grant: WorkspaceGrant) async throws -> [Invitation] {
        try requireAdmin(grant)
        return try await repository.invitations(workspaceID: grant.workspaceID)
    }

    public func revokeInvitation(_ id: String, in grant: WorkspaceGrant, by actor: AuditActor) async throws -> Invitation {
        try requireAdmin(grant)
        guard ResourceID.isValid(id, prefix: .invitation),
            let invitation = try await repository.revokeInvitation(id: id, workspaceID: grant.workspaceID, by: actor)
        else { throw DomainError.notFound("invitation '\(id)' not found in workspace '\(grant.workspaceSlug)'") }
        return invitation
    }

    static let invalidInvitation = "is not a valid invitation, or it was accepted, revoked or has expired"

    /// Accepts an invitation. Without an account for its email, the password creates one; with an account,
    /// the password must be that account's (so a leaked link alone does not join someone else). Either way
    /// the person becomes a member and gets a sign-in session.
    public func acceptInvitation(
        _ secret: String, email given: String?, password: String, name: String?, clientAddress: String?, requestID: String?
    ) async throws -> (account: Account, workspace: Workspace, session: TokenInfo, secret: String) {
        guard LinkSecret.looksValid(secret), let target = try await repository.invitationTarget(secretHash: LinkSecret.hash(secret))
        else { throw DomainError.validation(pointer: "/invitation", Self.invalidInvitation) }
        if let name, name.unicodeScalars.count > AccountRules.maxNameLength {
            throw DomainError.validation(pointer: "/name", "must be at most \(AccountRules.maxNameLength) characters")
        }
        let email: String
        if target.invitation.email.isEmpty {
            guard let given else { throw DomainError.validation(pointer: "/email", "is required: this set-up link names no email") }
            if let problem = TokenRules.validateEmail(given, pointer: "/email") { throw DomainError.validation([problem]) }
            email = given.lowercased()
        } else {
            if let given, given.lowercased() != target.invitation.email {
                throw DomainError.validation(pointer: "/email", "is not the email this invitation was sent to")
            }
            email = target.invitation.email
        }
        var newHash: String?
        if let account = try await repository.credentials(email: email)?.account,
            let hash = try await repository.passwordHash(userID: account.id)
        {
            guard password.unicodeScalars.count <= AccountRules.maxPasswordLength, try await passwords.verify(password, hash: hash) else {
                throw DomainError.validation(pointer: "/password", "is not the password of the account \(account.email)")
            }
        } else {
            if let problem = AccountRules.validatePassword(password, email: email, pointer: "/password") {
                throw DomainError.validation([problem])
            }
            newHash = try await passwords.hash(password)
        }
        let (accepted, account) = try await repository.acceptInvitation(
            id: target.invitation.id, email: email, name: name, newPasswordHash: newHash, clientAddress: clientAddress,
            requestID: requestID)
        guard accepted, let account else { throw DomainError.validation(pointer: "/invitation", Self.invalidInvitation) }
        let (info, sessionSecret) = try await repository.createSession(
            userID: account.id, expiresAt: now().addingTimeInterval(TimeInterval(sessionSeconds)))
        return (account, target.workspace, info, sessionSecret)
    }

    // MARK: audit

    public func audit(in grant: WorkspaceGrant, filter: AuditFilter, limit: Int) async throws -> [AuditEvent] {
        try requireAdmin(grant)
        return try await repository.auditEvents(workspaceID: grant.workspaceID, filter: filter, limit: limit)
    }

    func requireAdmin(_ grant: WorkspaceGrant) throws {
        guard grant.role.canAdminister else {
            throw DomainError.forbidden("this needs the admin role in workspace '\(grant.workspaceSlug)'; you have '\(grant.role.rawValue)'")
        }
    }
}
