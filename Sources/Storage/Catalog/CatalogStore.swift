import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// Workspaces, users, memberships, tokens and the shard map, on the first server.
public struct CatalogStore: CatalogRepository {
    public let server: PhysicalServer
    let logger: Logger

    public init(server: PhysicalServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    // MARK: shard map

    /// Creates `count` logical shards spread round-robin over `servers` physical servers, once.
    /// Returns the map as stored (an existing map wins over the requested count).
    public func ensureShardMap(count: Int, servers: Int) async throws -> ShardMap {
        let logger = self.logger
        return try await server.transaction { connection in
            try await connection.query("LOCK TABLE shards IN EXCLUSIVE MODE", logger: logger)
            var placements: [Int: Int] = [:]
            for try await (shard, serverIndex) in try await connection.query(
                "SELECT shard_id, server_index FROM shards", logger: logger
            ).decode((Int, Int).self) {
                placements[shard] = serverIndex
            }
            if placements.isEmpty {
                let shardIDs = Array(0..<count)
                let serverIndexes = shardIDs.map { $0 % servers }
                try await connection.query(
                    "INSERT INTO shards (shard_id, server_index) SELECT * FROM UNNEST(\(shardIDs)::integer[], \(serverIndexes)::integer[])",
                    logger: logger)
                for (shard, serverIndex) in zip(shardIDs, serverIndexes) { placements[shard] = serverIndex }
            }
            return ShardMap(placements: placements)
        }
    }

    // MARK: server secrets

    /// The named secret, created (32 random bytes, hex) by whichever node asks first.
    public func serverSecret(_ name: String) async throws -> String {
        var rng = SystemRandomNumberGenerator()
        let candidate = Hex.string((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let logger = self.logger
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                INSERT INTO server_secrets (name, value) VALUES (\(name), \(candidate))
                ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING value
                """, logger: logger)
            for try await value in rows.decode(String.self) { return value }
            throw StorageError.configuration("server secret \(name) could not be read")
        }
    }

    // MARK: workspaces

    /// Places a new workspace on the logical shard holding the fewest workspaces.
    /// `createdByToken`: the user token that asked for it, whose scope then includes it.
    public func createWorkspace(slug: String, name: String, createdByToken: String? = nil) async throws -> Workspace {
        let id = ResourceID.make(.workspace)
        let logger = self.logger
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                INSERT INTO workspaces (id, slug, name, shard_id, created_by_token)
                SELECT \(id), \(slug), \(name), s.shard_id, \(createdByToken)
                FROM shards s LEFT JOIN workspaces w ON w.shard_id = s.shard_id
                GROUP BY s.shard_id ORDER BY count(w.id), s.shard_id LIMIT 1
                RETURNING shard_id, created_at
                """, logger: logger)
            for try await (shard, createdAt) in rows.decode((Int, Date).self) {
                return Workspace(id: id, slug: slug, name: name, shardID: shard, createdAt: createdAt)
            }
            throw StorageError.configuration("the catalog has no shards")
        }
    }

    public func workspace(slug: String) async throws -> Workspace? {
        try await workspaces(where: "slug", equals: slug).first
    }

    public func workspace(id: String) async throws -> Workspace? {
        try await workspaces(where: "id", equals: id).first
    }

    public func allWorkspaces() async throws -> [Workspace] {
        let logger = self.logger
        return try await server.run { connection in
            var result: [Workspace] = []
            for try await (id, slug, name, shard, createdAt) in try await connection.query(
                "SELECT id, slug, name, shard_id, created_at FROM workspaces ORDER BY slug", logger: logger
            ).decode((String, String, String, Int, Date).self) {
                result.append(Workspace(id: id, slug: slug, name: name, shardID: shard, createdAt: createdAt))
            }
            return result
        }
    }

    public func workspaces(ids: [String]) async throws -> [Workspace] {
        if ids.isEmpty { return [] }
        let logger = self.logger
        return try await server.run { connection in
            var result: [Workspace] = []
            for try await (id, slug, name, shard, createdAt) in try await connection.query(
                "SELECT id, slug, name, shard_id, created_at FROM workspaces WHERE id = ANY(\(ids)) ORDER BY slug",
                logger: logger
            ).decode((String, String, String, Int, Date).self) {
                result.append(Workspace(id: id, slug: slug, name: name, shardID: shard, createdAt: createdAt))
            }
            return result
        }
    }

    private func workspaces(where column: String, equals value: String) async throws -> [Workspace] {
        let logger = self.logger
        // `column` is one of two literals above, never user input.
        var bound = PostgresQuery(unsafeSQL: "SELECT id, slug, name, shard_id, created_at FROM workspaces WHERE \(column) = $1")
        bound.binds.append(value)
        let query = bound
        return try await server.run { connection in
            var result: [Workspace] = []
            for try await (id, slug, name, shard, createdAt) in try await connection.query(query, logger: logger)
                .decode((String, String, String, Int, Date).self)
            {
                result.append(Workspace(id: id, slug: slug, name: name, shardID: shard, createdAt: createdAt))
            }
            return result
        }
    }

    // MARK: users and memberships

    /// Finds the user by email or creates it.
    public func upsertUser(email: String, name: String?) async throws -> User {
        let id = ResourceID.make(.user)
        let logger = self.logger
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                INSERT INTO users (id, email, name) VALUES (\(id), \(email), \(name))
                ON CONFLICT (email) DO UPDATE SET name = COALESCE(EXCLUDED.name, users.name)
                RETURNING id, email, name
                """, logger: logger)
            for try await (id, email, name) in rows.decode((String, String, String?).self) {
                return User(id: id, email: email, name: name)
            }
            throw StorageError.configuration("user upsert returned no row")
        }
    }

    /// Makes the user a member with at least `role`: a membership never goes down this way (minting a
    /// viewer token for an admin must not demote them; roles change through the members endpoints).
    public func setMembership(workspaceID: String, userID: String, role: Role) async throws {
        let logger = self.logger
        try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO memberships (workspace_id, user_id, role) VALUES (\(workspaceID), \(userID), \(role.rawValue))
                ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = \(unescaped: Self.higherOfTheRoles)
                """, logger: logger)
            try await Self.notify(.user(id: userID), on: connection, logger: logger)
        }
    }

    /// Roles in ascending order, for comparisons in SQL.
    static let roleRank = "ARRAY['viewer', 'member', 'admin', 'owner']"

    /// An upsert of a membership that never lowers the existing role.
    static let higherOfTheRoles = """
        CASE WHEN array_position(\(roleRank), memberships.role) >= array_position(\(roleRank), EXCLUDED.role)
             THEN memberships.role ELSE EXCLUDED.role END
        """

    // MARK: tokens

    /// Stores the token's hash and returns the plaintext secret, which is not kept anywhere.
    /// With `audit`, the token's workspace records who minted it, in the same transaction.
    public func createToken(_ token: NewToken, audit actor: AuditActor? = nil) async throws -> (info: TokenInfo, secret: String) {
        let id = ResourceID.make(.token)
        let secret = TokenSecret.generate()
        let hash = TokenSecret.hash(secret)
        let hint = TokenSecret.hint(secret)
        let logger = self.logger
        try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO tokens (id, secret_hash, hint, class, name, workspace_id, role, user_id, created_by, expires_at)
                VALUES (\(id), \(hash), \(hint), \(token.tokenClass.rawValue), \(token.name), \(token.workspaceID),
                        \(token.role?.rawValue), \(token.userID), \(token.createdBy), \(token.expiresAt))
                """, logger: logger)
            if let actor, let workspaceID = token.workspaceID {
                var details: [String: JSONValue] = ["class": .string(token.tokenClass.rawValue), "name": .string(token.name)]
                if let role = token.role { details["role"] = .string(role.rawValue) }
                if let user = token.userID { details["user"] = .string(user) }
                try await AuditSQL.insert(
                    NewAuditEvent(
                        workspaceID: workspaceID, actor: actor, action: "token.created", targetType: "token", targetID: id,
                        details: details),
                    into: .catalog, on: connection, logger: logger)
            }
        }
        guard let info = try await self.token(id: id) else {
            throw StorageError.configuration("token \(id) vanished after insert")
        }
        return (info, secret)
    }

    private static let tokenColumns = """
        SELECT t.id, t.name, t.class, t.hint, t.workspace_id, t.role, t.created_at, t.expires_at, t.revoked_at,
               u.id, u.email, u.name, t.last_used_at
        FROM tokens t LEFT JOIN users u ON u.id = t.user_id
        """

    public func token(id: String) async throws -> TokenInfo? {
        var query = PostgresQuery(unsafeSQL: Self.tokenColumns + " WHERE t.id = $1")
        query.binds.append(id)
        return try await tokens(query).first
    }

    /// Tokens bound to or issued by a workspace, newest first, revoked ones included.
    public func tokens(workspaceID: String) async throws -> [TokenInfo] {
        var query = PostgresQuery(unsafeSQL: Self.tokenColumns + " WHERE t.workspace_id = $1 ORDER BY t.id DESC")
        query.binds.append(workspaceID)
        return try await tokens(query)
    }

    private func tokens(_ query: PostgresQuery) async throws -> [TokenInfo] {
        let logger = self.logger
        return try await server.run { connection in
            var result: [TokenInfo] = []
            let rows = try await connection.query(query, logger: logger)
            for try await row in rows {
                let (id, name, cls, hint, workspaceID, role, createdAt, expiresAt, revokedAt, userID, email, userName, lastUsedAt) =
                    try row.decode(
                        (String, String, String, String, String?, String?, Date, Date?, Date?, String?, String?, String?, Date?).self)
                let user = userID.map { User(id: $0, email: email ?? "", name: userName) }
                result.append(
                    TokenInfo(
                        id: id, name: name, tokenClass: TokenClass(rawValue: cls) ?? .workspace, hint: hint,
                        workspaceID: workspaceID, role: role.flatMap(Role.init(rawValue:)), user: user,
                        createdAt: createdAt, expiresAt: expiresAt, revokedAt: revokedAt, lastUsedAt: lastUsedAt))
            }
            return result
        }
    }

    /// Marks a token revoked. Returns nil when no such token belongs to the workspace.
    public func revokeToken(id: String, workspaceID: String, by actor: AuditActor? = nil) async throws -> TokenInfo? {
        let logger = self.logger
        let found = try await server.transaction { connection -> Bool in
            let rows = try await connection.query(
                """
                UPDATE tokens SET revoked_at = COALESCE(revoked_at, now())
                WHERE id = \(id) AND workspace_id = \(workspaceID) RETURNING id
                """, logger: logger)
            var found = false
            for try await _ in rows { found = true }
            if found {
                if let actor {
                    try await AuditSQL.insert(
                        NewAuditEvent(workspaceID: workspaceID, actor: actor, action: "token.revoked", targetType: "token", targetID: id),
                        into: .catalog, on: connection, logger: logger)
                }
                try await Self.notify(.token(id: id), on: connection, logger: logger)
            }
            return found
        }
        return found ? try await token(id: id) : nil
    }

    /// Deletes a token for good (a revoked one stays listed; a deleted one is gone). Returns false when no
    /// such token belongs to the workspace.
    public func deleteToken(id: String, workspaceID: String, by actor: AuditActor? = nil) async throws -> Bool {
        let logger = self.logger
        return try await server.transaction { connection -> Bool in
            var found = false
            for try await _ in try await connection.query(
                "DELETE FROM tokens WHERE id = \(id) AND workspace_id = \(workspaceID) RETURNING id", logger: logger
            ) { found = true }
            if found {
                if let actor {
                    try await AuditSQL.insert(
                        NewAuditEvent(workspaceID: workspaceID, actor: actor, action: "token.deleted", targetType: "token", targetID: id),
                        into: .catalog, on: connection, logger: logger)
                }
                try await Self.notify(.token(id: id), on: connection, logger: logger)
            }
            return found
        }
    }

    /// Records when tokens were last used: one statement for everything a node saw since its last flush.
    /// A later time never goes back (another node may have flushed a newer one).
    public func recordTokenUse(ids: [String], at times: [Date]) async throws {
        guard !ids.isEmpty, ids.count == times.count else { return }
        let logger = self.logger
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE tokens t SET last_used_at = GREATEST(t.last_used_at, u.at)
                FROM UNNEST(\(ids)::text[], \(times)::timestamptz[]) AS u(id, at)
                WHERE t.id = u.id
                """, logger: logger)
        }
    }

    /// Resolves a secret's hash to the caller's identity: nil for unknown, revoked or expired tokens.
    /// One round trip: the token joined with its workspace (workspace tokens) or the user's memberships.
    ///
    /// A user token's grants are the user's memberships *within its scope*: the workspace that issued
    /// it and the workspaces created through it — never the person's other workspaces — each at most
    /// at the role stored on the token (the issuer's cap). A membership removed is a grant gone.
    /// Only a token with no issuing workspace covers all of a person's memberships: the person's own
    /// (sign-in), never one a workspace admin mints.
    public func resolve(secretHash: String) async throws -> Identity? {
        let logger = self.logger
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT t.id, t.class, t.user_id, (extract(epoch FROM t.expires_at) * 1000)::bigint,
                       w.id, w.slug, w.shard_id, t.role, m.role, (w.created_by_token = t.id), t.workspace_id IS NULL
                FROM tokens t
                LEFT JOIN memberships m ON t.class = 'user' AND m.user_id = t.user_id
                     AND (t.workspace_id IS NULL OR m.workspace_id = t.workspace_id
                          OR m.workspace_id IN (SELECT c.id FROM workspaces c WHERE c.created_by_token = t.id))
                LEFT JOIN workspaces w ON w.id = CASE WHEN t.class = 'user' THEN m.workspace_id ELSE t.workspace_id END
                WHERE t.secret_hash = \(secretHash) AND t.revoked_at IS NULL
                  AND (t.expires_at IS NULL OR t.expires_at > now())
                """, logger: logger)
            var tokenID: String?
            var tokenClass = TokenClass.workspace
            var userID: String?
            var expires: Int64?
            var grants: [WorkspaceGrant] = []
            var unissued = false
            for try await (id, cls, user, exp, wsID, wsSlug, shard, tokenRole, memberRole, createdByIt, noIssuer) in rows.decode(
                (String, String, String?, Int64?, String?, String?, Int?, String?, String?, Bool?, Bool).self)
            {
                unissued = noIssuer
                tokenID = id
                tokenClass = TokenClass(rawValue: cls) ?? .workspace
                userID = user
                expires = exp
                guard let wsID, let wsSlug, let shard else { continue }
                let cap = tokenRole.flatMap(Role.init(rawValue:))
                let role: Role?
                switch tokenClass {
                case .workspace: role = cap
                case .user:
                    // The cap applies in the issuing workspace; a workspace the token created is the user's own.
                    if let member = memberRole.flatMap(Role.init(rawValue:)) {
                        role = createdByIt == true ? member : min(member, cap ?? member)
                    } else {
                        role = nil
                    }
                }
                if let role {
                    grants.append(WorkspaceGrant(workspaceID: wsID, workspaceSlug: wsSlug, shardID: shard, role: role))
                }
            }
            guard let tokenID else { return nil }
            return Identity(
                tokenID: tokenID, tokenClass: tokenClass, userID: userID, grants: grants,
                expiresAtMilliseconds: expires.map { UInt64(max(0, $0)) },
                isSignInSession: tokenClass == .user && unissued)
        }
    }

    // MARK: identity changes

    static let identityChannel = "kaizen_identity"

    /// Tells every node, when the caller's transaction commits, that cached identities are stale.
    static func notify(_ change: IdentityChange, on connection: PostgresConnection, logger: Logger) async throws {
        let payload: String
        switch change {
        case .token(let id): payload = "token:" + id
        case .user(let id): payload = "user:" + id
        case .all: payload = "all"
        }
        try await connection.query("SELECT pg_notify(\(identityChannel), \(payload))", logger: logger)
    }

    static func decode(_ payload: String) -> IdentityChange {
        if payload.hasPrefix("token:") { return .token(id: String(payload.dropFirst(6))) }
        if payload.hasPrefix("user:") { return .user(id: String(payload.dropFirst(5))) }
        return .all
    }
}

extension CatalogStore: IdentityChangeFeed {
    /// LISTENs on one pooled connection of the catalog server. Whenever the listener (re)starts, changes made
    /// while it was not listening are unknown, so it reports `.all` first.
    public func follow(_ handle: @escaping @Sendable (IdentityChange) -> Void) async {
        await server.follow(channels: [Self.identityChannel], logger: logger, onListening: { handle(.all) }) { _, payload in
            handle(Self.decode(payload))
        }
    }
}
