/// What a token may do inside a workspace.
public enum Role: String, Sendable, CaseIterable, Codable, Comparable {
    case viewer
    case member
    case admin
    /// An admin who may also make owners; a workspace always keeps at least one.
    case owner

    /// Members and admins may change data (push runs, create projects); viewers only read.
    public var canWrite: Bool { self != .viewer }
    /// Only admins and owners manage tokens, members and workspace settings.
    public var canAdminister: Bool { self >= .admin }

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .member: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
}

/// The two token classes of the API, each with its own rate limit.
public enum TokenClass: String, Sendable, CaseIterable, Codable {
    /// Long-lived, bound to one workspace and a role; what CI uses.
    case workspace
    /// Short-lived, belongs to a user; grants what the user's memberships grant.
    case user
}

/// Who may create workspaces through the API (`KAIZEN_WORKSPACE_CREATION`).
public enum WorkspaceCreationPolicy: String, Sendable, CaseIterable {
    /// User tokens whose grants include a role above viewer; a viewer-only token never becomes an admin this way.
    case members
    /// Only operators, with `kaizen workspace create`.
    case operators
}
