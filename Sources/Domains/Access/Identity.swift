/// One workspace a caller may act in, and how.
public struct WorkspaceGrant: Sendable, Hashable {
    public let workspaceID: String
    public let workspaceSlug: String
    public let shardID: Int
    public let role: Role

    public init(workspaceID: String, workspaceSlug: String, shardID: Int, role: Role) {
        self.workspaceID = workspaceID
        self.workspaceSlug = workspaceSlug
        self.shardID = shardID
        self.role = role
    }
}

/// The authenticated caller behind a bearer token.
public struct Identity: Sendable {
    public let tokenID: String
    public let tokenClass: TokenClass
    public let userID: String?
    /// Workspaces this caller can see, in slug order. A workspace token has exactly one.
    public let grants: [WorkspaceGrant]
    /// Epoch milliseconds after which the token is refused; nil for workspace tokens.
    public let expiresAtMilliseconds: UInt64?
    /// A person's own sign-in (`POST /v1/auth/login`): a user token no workspace issued, covering all of
    /// the person's memberships; logout and a password change end it.
    public let isSignInSession: Bool

    public init(
        tokenID: String, tokenClass: TokenClass, userID: String?, grants: [WorkspaceGrant],
        expiresAtMilliseconds: UInt64?, isSignInSession: Bool = false
    ) {
        self.isSignInSession = isSignInSession
        self.tokenID = tokenID
        self.tokenClass = tokenClass
        self.userID = userID
        self.grants = grants.sorted { $0.workspaceSlug < $1.workspaceSlug }
        self.expiresAtMilliseconds = expiresAtMilliseconds
    }

    public func grant(workspaceSlug: String) -> WorkspaceGrant? {
        grants.first { $0.workspaceSlug == workspaceSlug }
    }

    public func grant(workspaceID: String) -> WorkspaceGrant? {
        grants.first { $0.workspaceID == workspaceID }
    }
}
