import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// Accounts, sessions, links, members, invitations and the catalog's audit rows.
extension CatalogStore: AccountRepository {
    static let accountColumns =
        "u.id, u.email, u.name, (u.password_hash IS NOT NULL), u.operator, u.created_at, u.last_sign_in_at"
    typealias AccountRow = (String, String, String?, Bool, Bool, Date, Date?)

    static func account(_ row: AccountRow) -> Account {
        Account(
            id: row.0, email: row.1, name: row.2, hasPassword: row.3, isOperator: row.4, createdAt: row.5,
            lastSignInAt: row.6)
    }

    // MARK: accounts

    public func ensureAccount(email: String, name: String?, isOperator: Bool) async throws -> (account: Account, created: Bool) {
        let id = ResourceID.make(.user)
        let logger = self.logger
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO users (id, email, name, operator) VALUES (\(id), lower(\(email)), \(name), \(isOperator))
                    ON CONFLICT DO NOTHING RETURNING id
                )
                UPDATE users u SET name = COALESCE(\(name), u.name), operator = u.operator OR \(isOperator)
                WHERE lower(u.email) = lower(\(email))
                RETURNING \(unescaped: Self.accountColumns), (SELECT count(*) FROM inserted) > 0
                """, logger: logger)
            for try await row in rows.decode((String, String, String?, Bool, Bool, Date, Date?, Bool).self) {
                return (Self.account((row.0, row.1, row.2, row.3, row.4, row.5, row.6)), row.7)
            }
            // The UPDATE does not see a row the same statement's CTE inserted: read it back.
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.accountColumns) FROM users u WHERE lower(u.email) = lower(\(email))", logger: logger
            ).decode(AccountRow.self) {
                return (Self.account(row), true)
            }
            throw StorageError.configuration("account \(email) vanished after insert")
        }
    }

    public func account(id: String) async throws -> Account? {
        let logger = self.logger
        return try await server.run { connection in
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.accountColumns) FROM users u WHERE u.id = \(id)", logger: logger
            ).decode(AccountRow.self) {
                return Self.account(row)
            }
            return nil
        }
    }

    public func credentials(email: String) async throws -> (account: Account, passwordHash: String?)? {
        let logger = self.logger
        return try await server.run { connection in
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.accountColumns), u.password_hash FROM users u WHERE lower(u.email) = lower(\(email))",
                logger: logger
            ).decode((String, String, String?, Bool, Bool, Date, Date?, String?).self) {
                return (Self.account((row.0, row.1, row.2, row.3, row.4, row.5, row.6)), row.7)
            }
            return nil
        }
    }

    public func passwordHash(userID: String) async throws -> String? {
        let logger = self.logger
        return try await server.run { connection in
            for try await hash in try await connection.query(
                "SELECT password_hash FROM users WHERE id = \(userID)", logger: logger
            ).decode(String?.self) {
                return hash
            }
            return nil
        }
    }

    public func accounts(limit: Int, offset: Int) async throws -> [Account] {
        let logger = self.logger
        return try await server.run { connection in
            var result: [Account] = []
            for try await row in try await connection.query(
                """
                SELECT \(unescaped: Self.accountColumns) FROM users u
                ORDER BY u.last_sign_in_at DESC NULLS LAST, u.email LIMIT \(limit) OFFSET \(offset)
                """, logger: logger
            ).decode(AccountRow.self) {
                result.append(Self.account(row))
            }
            return result
        }
    }

    // MARK: links

    public func createLink(userID: String, purpose: AccountLinkPurpose, secretHash: String, expiresAt: Date) async throws {
        let id = ResourceID.make(.accountLink)
        let logger = self.logger
        try await server.run { connection in
            try await connection.query(
                """
                INSERT INTO account_links (id, user_id, purpose, secret_hash, expires_at)
                VALUES (\(id), \(userID), \(purpose.rawValue), \(secretHash), \(expiresAt))
                """, logger: logger)
        }
    }

    public func linkTarget(secretHash: String) async throws -> (linkID: String, purpose: AccountLinkPurpose, account: Account)? {
        let logger = self.logger
        return try await server.run { connection in
            for try await row in try await connection.query(
                """
                SELECT l.id, l.purpose, \(unescaped: Self.accountColumns)
                FROM account_links l JOIN users u ON u.id = l.user_id
                WHERE l.secret_hash = \(secretHash) AND l.used_at IS NULL AND l.expires_at > now()
                """, logger: logger
            ).decode((String, String, String, String, String?, Bool, Bool, Date, Date?).self) {
                guard let purpose = AccountLinkPurpose(rawValue: row.1) else { return nil }
                return (row.0, purpose, Self.account((row.2, row.3, row.4, row.5, row.6, row.7, row.8)))
            }
            return nil
        }
    }

    public func redeemLink(id: String, passwordHash: String) async throws -> Bool {
        let logger = self.logger
        return try await server.transaction { connection in
            var userID: String?
            for try await user in try await connection.query(
                """
                UPDATE account_links SET used_at = now()
                WHERE id = \(id) AND used_at IS NULL AND expires_at > now() RETURNING user_id
                """, logger: logger
            ).decode(String.self) {
                userID = user
            }
            guard let userID else { return false }
            try await Self.replacePassword(userID: userID, hash: passwordHash, on: connection, logger: logger)
            return true
        }
    }

    /// Sets the password and ends every sign-in session of the account (its other tokens stay).
    static func replacePassword(userID: String, hash: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE users SET password_hash = \(hash), password_changed_at = now() WHERE id = \(userID)", logger: logger)
        try await connection.query(
            """
            UPDATE tokens SET revoked_at = now()
            WHERE user_id = \(userID) AND class = 'user' AND workspace_id IS NULL AND revoked_at IS NULL
            """, logger: logger)
        try await notify(.user(id: userID), on: connection, logger: logger)
    }

    // MARK: sessions

    public func createSession(userID: String, expiresAt: Date) async throws -> (info: TokenInfo, secret: String) {
        let logger = self.logger
        let created = try await createToken(
            NewToken(
                name: "sign-in", tokenClass: .user, workspaceID: nil, role: nil, userID: userID, createdBy: "sign-in",
                expiresAt: expiresAt))
        try await server.run { connection in
            try await connection.query("UPDATE users SET last_sign_in_at = now() WHERE id = \(userID)", logger: logger)
        }
        return created
    }

    public func endSession(tokenID: String, userID: String) async throws -> Bool {
        let logger = self.logger
        return try await server.transaction { connection in
            var found = false
            for try await _ in try await connection.query(
                """
                UPDATE tokens SET revoked_at = COALESCE(revoked_at, now())
                WHERE id = \(tokenID) AND user_id = \(userID) AND class = 'user' AND workspace_id IS NULL RETURNING id
                """, logger: logger
            ) { found = true }
            if found { try await Self.notify(.token(id: tokenID), on: connection, logger: logger) }
            return found
        }
    }

    public func changePassword(userID: String, passwordHash: String) async throws {
        let logger = self.logger
        try await server.transaction { connection in
            try await Self.replacePassword(userID: userID, hash: passwordHash, on: connection, logger: logger)
        }
    }

    // MARK: members

    static let memberColumns = "u.id, u.email, u.name, m.role, m.created_at"

    static func member(_ row: (String, String, String?, String, Date)) -> Member {
        Member(user: User(id: row.0, email: row.1, name: row.2), role: Role(rawValue: row.3) ?? .viewer, since: row.4)
    }

    public func members(workspaceID: String) async throws -> [Member] {
        let logger = self.logger
        return try await server.run { connection in
            var result: [Member] = []
            for try await row in try await connection.query(
                """
                SELECT \(unescaped: Self.memberColumns) FROM memberships m JOIN users u ON u.id = m.user_id
                WHERE m.workspace_id = \(workspaceID) ORDER BY u.email
                """, logger: logger
            ).decode((String, String, String?, String, Date).self) {
                result.append(Self.member(row))
            }
            return result
        }
    }

    public func member(workspaceID: String, userID: String) async throws -> Member? {
        let logger = self.logger
        return try await server.run { connection in
            try await Self.member(workspaceID: workspaceID, userID: userID, on: connection, logger: logger)
        }
    }

    static func member(workspaceID: String, userID: String, on connection: PostgresConnection, logger: Logger, lock: Bool = false)
        async throws -> Member?
    {
        let query: PostgresQuery =
            lock
            ? """
            SELECT \(unescaped: Self.memberColumns) FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = \(workspaceID) AND m.user_id = \(userID) FOR UPDATE OF m
            """
            : """
            SELECT \(unescaped: Self.memberColumns) FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = \(workspaceID) AND m.user_id = \(userID)
            """
        for try await row in try await connection.query(query, logger: logger).decode((String, String, String?, String, Date).self) {
            return member(row)
        }
        return nil
    }

    /// Locks the workspace's owner rows, so that two concurrent demotions cannot both see another owner.
    static func ownerCount(workspaceID: String, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        var count = 0
        for try await _ in try await connection.query(
            "SELECT user_id FROM memberships WHERE workspace_id = \(workspaceID) AND role = 'owner' FOR UPDATE", logger: logger
        ) { count += 1 }
        return count
    }

    public func setMemberRole(workspaceID: String, userID: String, role: Role, by actor: AuditActor) async throws -> MemberChange {
        let logger = self.logger
        return try await server.transaction { connection in
            let owners = try await Self.ownerCount(workspaceID: workspaceID, on: connection, logger: logger)
            guard let current = try await Self.member(workspaceID: workspaceID, userID: userID, on: connection, logger: logger, lock: true)
            else { return .notMember }
            if current.role == .owner && role != .owner && owners <= 1 { return .lastOwner }
            if current.role == role { return .changed(current) }
            try await connection.query(
                "UPDATE memberships SET role = \(role.rawValue) WHERE workspace_id = \(workspaceID) AND user_id = \(userID)",
                logger: logger)
            // Tokens this workspace issued the person carry a cap: it follows the role down, never up.
            try await connection.query(
                """
                UPDATE tokens SET role = \(role.rawValue)
                WHERE user_id = \(userID) AND workspace_id = \(workspaceID) AND class = 'user'
                  AND array_position(\(unescaped: Self.roleRank), role) > array_position(\(unescaped: Self.roleRank), \(role.rawValue))
                """, logger: logger)
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: workspaceID, actor: actor, action: "member.role_changed", targetType: "user", targetID: userID,
                    details: ["from": .string(current.role.rawValue), "to": .string(role.rawValue)]),
                into: .catalog, on: connection, logger: logger)
            try await Self.notify(.user(id: userID), on: connection, logger: logger)
            return .changed(Member(user: current.user, role: role, since: current.since))
        }
    }

    public func removeMember(workspaceID: String, userID: String, by actor: AuditActor) async throws -> MemberChange {
        let logger = self.logger
        return try await server.transaction { connection in
            let owners = try await Self.ownerCount(workspaceID: workspaceID, on: connection, logger: logger)
            guard let current = try await Self.member(workspaceID: workspaceID, userID: userID, on: connection, logger: logger, lock: true)
            else { return .notMember }
            if current.role == .owner && owners <= 1 { return .lastOwner }
            try await connection.query(
                "DELETE FROM memberships WHERE workspace_id = \(workspaceID) AND user_id = \(userID)", logger: logger)
            // Their tokens from this workspace end, and so do their sign-in sessions (which a browser may
            // have open on this workspace); they sign in again for their other workspaces.
            try await connection.query(
                """
                UPDATE tokens SET revoked_at = now()
                WHERE user_id = \(userID) AND class = 'user' AND revoked_at IS NULL
                  AND (workspace_id = \(workspaceID) OR workspace_id IS NULL)
                """, logger: logger)
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: workspaceID, actor: actor, action: "member.removed", targetType: "user", targetID: userID,
                    details: ["role": .string(current.role.rawValue), "email": .string(current.user.email)]),
                into: .catalog, on: connection, logger: logger)
            try await Self.notify(.user(id: userID), on: connection, logger: logger)
            return .changed(nil)
        }
    }

    public func addMember(workspaceID: String, userID: String, role: Role, by actor: AuditActor) async throws {
        let logger = self.logger
        try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO memberships (workspace_id, user_id, role) VALUES (\(workspaceID), \(userID), \(role.rawValue))
                ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = EXCLUDED.role
                """, logger: logger)
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: workspaceID, actor: actor, action: "member.added", targetType: "user", targetID: userID,
                    details: ["role": .string(role.rawValue)]),
                into: .catalog, on: connection, logger: logger)
            try await Self.notify(.user(id: userID), on: connection, logger: logger)
        }
    }

    // MARK: invitations

    static let invitationColumns =
        "i.id, i.workspace_id, i.email, i.role, i.created_by, i.created_at, i.expires_at, i.accepted_at, i.revoked_at"
    typealias InvitationRow = (String, String, String, String, String?, Date, Date, Date?, Date?)

    static func invitation(_ row: InvitationRow) -> Invitation {
        Invitation(
            id: row.0, workspaceID: row.1, email: row.2, role: Role(rawValue: row.3) ?? .viewer, createdBy: row.4,
            createdAt: row.5, expiresAt: row.6, acceptedAt: row.7, revokedAt: row.8)
    }

    public func createInvitation(
        workspaceID: String, email: String, role: Role, secretHash: String, expiresAt: Date, grantsOperator: Bool,
        by actor: AuditActor
    ) async throws -> Invitation {
        let id = ResourceID.make(.invitation)
        let logger = self.logger
        return try await server.transaction { connection in
            var created: Invitation?
            for try await row in try await connection.query(
                """
                INSERT INTO invitations AS i (id, workspace_id, email, role, secret_hash, created_by, expires_at, grants_operator)
                VALUES (\(id), \(workspaceID), \(email), \(role.rawValue), \(secretHash), \(actor.id), \(expiresAt), \(grantsOperator))
                RETURNING \(unescaped: Self.invitationColumns)
                """, logger: logger
            ).decode(InvitationRow.self) {
                created = Self.invitation(row)
            }
            guard let created else { throw StorageError.configuration("invitation insert returned no row") }
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: workspaceID, actor: actor, action: "invitation.created", targetType: "invitation",
                    targetID: id, details: ["email": .string(email), "role": .string(role.rawValue)]),
                into: .catalog, on: connection, logger: logger)
            return created
        }
    }

    public func invitations(workspaceID: String) async throws -> [Invitation] {
        let logger = self.logger
        return try await server.run { connection in
            var result: [Invitation] = []
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.invitationColumns) FROM invitations i WHERE i.workspace_id = \(workspaceID) ORDER BY i.created_at DESC, i.id DESC",
                logger: logger
            ).decode(InvitationRow.self) {
                result.append(Self.invitation(row))
            }
            return result
        }
    }

    public func revokeInvitation(id: String, workspaceID: String, by actor: AuditActor) async throws -> Invitation? {
        let logger = self.logger
        return try await server.transaction { connection in
            var revokedNow = false
            for try await _ in try await connection.query(
                """
                UPDATE invitations SET revoked_at = now()
                WHERE id = \(id) AND workspace_id = \(workspaceID) AND revoked_at IS NULL AND accepted_at IS NULL RETURNING id
                """, logger: logger
            ) { revokedNow = true }
            if revokedNow {
                try await AuditSQL.insert(
                    NewAuditEvent(workspaceID: workspaceID, actor: actor, action: "invitation.revoked", targetType: "invitation", targetID: id),
                    into: .catalog, on: connection, logger: logger)
            }
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.invitationColumns) FROM invitations i WHERE i.id = \(id) AND i.workspace_id = \(workspaceID)",
                logger: logger
            ).decode(InvitationRow.self) {
                return Self.invitation(row)
            }
            return nil
        }
    }

    public func invitationTarget(secretHash: String) async throws -> (invitation: Invitation, workspace: Workspace)? {
        let logger = self.logger
        return try await server.run { connection in
            for try await row in try await connection.query(
                """
                SELECT \(unescaped: Self.invitationColumns), w.slug, w.name, w.shard_id, w.created_at
                FROM invitations i JOIN workspaces w ON w.id = i.workspace_id
                WHERE i.secret_hash = \(secretHash) AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
                """, logger: logger
            ).decode((String, String, String, String, String?, Date, Date, Date?, Date?, String, String, Int, Date).self) {
                let invitation = Self.invitation((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8))
                return (invitation, Workspace(id: row.1, slug: row.9, name: row.10, shardID: row.11, createdAt: row.12))
            }
            return nil
        }
    }

    public func acceptInvitation(
        id: String, email: String, name: String?, newPasswordHash: String?, clientAddress: String?, requestID: String?
    ) async throws -> (accepted: Bool, account: Account?) {
        let logger = self.logger
        let newUserID = ResourceID.make(.user)
        return try await server.transaction { connection in
            var found: (workspaceID: String, email: String, role: String, grantsOperator: Bool)?
            for try await row in try await connection.query(
                """
                SELECT workspace_id, email, role, grants_operator FROM invitations
                WHERE id = \(id) AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() FOR UPDATE
                """, logger: logger
            ).decode((String, String, String, Bool).self) {
                found = row
            }
            // An invitation names its email; only the owner set-up link leaves it to the one accepting.
            guard let found, found.email.isEmpty || found.email == email.lowercased() else { return (false, nil) }
            let pending = (workspaceID: found.workspaceID, email: email.lowercased(), role: found.role)
            if let newPasswordHash {
                // No account, or one without a password (known only from a user token): this sets it.
                try await connection.query(
                    """
                    INSERT INTO users (id, email, name, password_hash, password_changed_at)
                    VALUES (\(newUserID), \(pending.email), \(name), \(newPasswordHash), now())
                    ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash, password_changed_at = now(),
                        name = COALESCE(EXCLUDED.name, users.name)
                    WHERE users.password_hash IS NULL
                    """, logger: logger)
            }
            var account: Account?
            for try await row in try await connection.query(
                "SELECT \(unescaped: Self.accountColumns) FROM users u WHERE lower(u.email) = lower(\(pending.email))", logger: logger
            ).decode(AccountRow.self) {
                account = Self.account(row)
            }
            guard let account else { return (false, nil) }
            if found.grantsOperator {
                try await connection.query("UPDATE users SET operator = true WHERE id = \(account.id)", logger: logger)
            }
            try await connection.query(
                "UPDATE invitations SET accepted_at = now(), accepted_by = \(account.id) WHERE id = \(id)", logger: logger)
            // An existing member keeps a higher role: an invitation never demotes.
            try await connection.query(
                """
                INSERT INTO memberships (workspace_id, user_id, role) VALUES (\(pending.workspaceID), \(account.id), \(pending.role))
                ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = \(unescaped: Self.higherOfTheRoles)
                """, logger: logger)
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: pending.workspaceID,
                    actor: AuditActor(type: "user", id: account.id, clientAddress: clientAddress, requestID: requestID),
                    action: "invitation.accepted", targetType: "invitation", targetID: id,
                    details: ["role": .string(pending.role), "email": .string(pending.email)]),
                into: .catalog, on: connection, logger: logger)
            try await Self.notify(.user(id: account.id), on: connection, logger: logger)
            return (true, account)
        }
    }

    // MARK: audit

    public func recordAudit(_ event: NewAuditEvent) async throws {
        let logger = self.logger
        try await server.run { connection in try await AuditSQL.insert(event, into: .catalog, on: connection, logger: logger) }
    }

    public func auditEvents(workspaceID: String, filter: AuditFilter, limit: Int) async throws -> [AuditEvent] {
        let logger = self.logger
        return try await server.run { connection in
            try await AuditSQL.events(workspaceID: workspaceID, filter: filter, limit: limit, from: .catalog, on: connection, logger: logger)
        }
    }
}
