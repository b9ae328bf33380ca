import Foundation

/// A token as listed: never its secret.
public struct TokenInfo: Sendable, Hashable {
    public let id: String
    public let name: String
    public let tokenClass: TokenClass
    public let hint: String
    /// Workspace tokens: the bound workspace. User tokens: the workspace that issued it (nil when an operator did).
    public let workspaceID: String?
    public let role: Role?
    public let user: User?
    public let createdAt: Date
    public let expiresAt: Date?
    public let revokedAt: Date?
    /// When the token last authenticated a request, to within the server's flush period (a minute by default).
    public let lastUsedAt: Date?

    public init(
        id: String, name: String, tokenClass: TokenClass, hint: String, workspaceID: String?, role: Role?, user: User?,
        createdAt: Date, expiresAt: Date?, revokedAt: Date?, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.tokenClass = tokenClass
        self.hint = hint
        self.workspaceID = workspaceID
        self.role = role
        self.user = user
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

/// What minting a token stores.
public struct NewToken: Sendable {
    public var name: String
    public var tokenClass: TokenClass
    public var workspaceID: String?
    public var role: Role?
    public var userID: String?
    public var createdBy: String?
    public var expiresAt: Date?

    public init(
        name: String, tokenClass: TokenClass, workspaceID: String?, role: Role?, userID: String?, createdBy: String?,
        expiresAt: Date?
    ) {
        self.name = name
        self.tokenClass = tokenClass
        self.workspaceID = workspaceID
        self.role = role
        self.userID = userID
        self.createdBy = createdBy
        self.expiresAt = expiresAt
    }
}

/// Limits and defaults of tokens.
public enum TokenRules {
    public static let defaultUserTTLSeconds = 12 * 3600
    public static let maxUserTTLSeconds = 30 * 24 * 3600
    /// Workspace tokens do not expire unless asked to; when they do, within two years.
    public static let maxWorkspaceTTLSeconds = 2 * 365 * 24 * 3600
    public static let maxNameLength = 100

    public static func validateName(_ name: String, pointer: String = "/name") -> FieldProblem? {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return FieldProblem(pointer: pointer, message: "must not be empty") }
        if name.unicodeScalars.count > maxNameLength {
            return FieldProblem(pointer: pointer, message: "must be at most \(maxNameLength) characters")
        }
        return nil
    }

    public static func validateEmail(_ email: String, pointer: String) -> FieldProblem? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), email.unicodeScalars.count <= 254,
            !email.contains(where: { $0.isWhitespace })
        else {
            return FieldProblem(pointer: pointer, message: "must be an email address")
        }
        return nil
    }
}
