import Foundation

/// A person's account as listed: never the password hash.
public struct Account: Sendable, Hashable {
    public let id: String
    public let email: String
    public let name: String?
    /// False until the person sets a password through a link (an account created by `kaizen user create`
    /// or known only from a user token).
    public let hasPassword: Bool
    /// Operators run the server: they may list every account (`GET /v1/admin/users`).
    public let isOperator: Bool
    public let createdAt: Date
    public let lastSignInAt: Date?

    public init(
        id: String, email: String, name: String?, hasPassword: Bool, isOperator: Bool, createdAt: Date, lastSignInAt: Date?
    ) {
        self.id = id
        self.email = email
        self.name = name
        self.hasPassword = hasPassword
        self.isOperator = isOperator
        self.createdAt = createdAt
        self.lastSignInAt = lastSignInAt
    }

    public var user: User { User(id: id, email: email, name: name) }
}

/// What a one-time account link does when redeemed.
public enum AccountLinkPurpose: String, Sendable, CaseIterable {
    /// A new account's first password.
    case setPassword = "set_password"
    /// A forgotten password, replaced.
    case resetPassword = "reset_password"
}

/// A workspace member: the person and the role.
public struct Member: Sendable, Hashable {
    public let user: User
    public let role: Role
    public let since: Date

    public init(user: User, role: Role, since: Date) {
        self.user = user
        self.role = role
        self.since = since
    }
}

/// An invitation to a workspace, as listed: never its secret.
public struct Invitation: Sendable, Hashable {
    public enum State: String, Sendable {
        case pending, accepted, revoked, expired
    }

    public let id: String
    public let workspaceID: String
    public let email: String
    public let role: Role
    public let createdBy: String?
    public let createdAt: Date
    public let expiresAt: Date
    public let acceptedAt: Date?
    public let revokedAt: Date?

    public init(
        id: String, workspaceID: String, email: String, role: Role, createdBy: String?, createdAt: Date, expiresAt: Date,
        acceptedAt: Date?, revokedAt: Date?
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.email = email
        self.role = role
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.acceptedAt = acceptedAt
        self.revokedAt = revokedAt
    }

    public func state(at now: Date) -> State {
        if acceptedAt != nil { return .accepted }
        if revokedAt != nil { return .revoked }
        return expiresAt <= now ? .expired : .pending
    }
}

/// Secrets of one-time links (set-password, reset, invitation): `kln_` + 43 base-62 characters, stored
/// as SHA-256 like tokens, and told apart from tokens by the prefix so neither can stand in for the other.
public enum LinkSecret {
    public static let prefix = "kln_"

    public static func generate() -> String {
        prefix + TokenSecret.generate().dropFirst(TokenSecret.prefix.count)
    }

    public static func looksValid(_ secret: some StringProtocol) -> Bool {
        guard secret.hasPrefix(prefix) else { return false }
        return TokenSecret.looksValid(TokenSecret.prefix + secret.dropFirst(prefix.count))
    }

    public static func hash(_ secret: some StringProtocol) -> String { TokenSecret.hash(secret) }
}

/// Limits and defaults of accounts.
public enum AccountRules {
    public static let minPasswordLength = 10
    /// bcrypt reads 72 bytes; longer passwords are pre-hashed, but a bound keeps the request small.
    public static let maxPasswordLength = 1024
    public static let maxNameLength = 200
    public static let setPasswordLinkSeconds = 7 * 24 * 3600
    public static let resetPasswordLinkSeconds = 24 * 3600
    public static let invitationSeconds = 7 * 24 * 3600
    public static let maxInvitationSeconds = 30 * 24 * 3600

    /// The documented rule: at least 10 characters, not the email address (or its name part), not one of
    /// the commonly used passwords below. Nil when the password is acceptable.
    public static func validatePassword(_ password: String, email: String, pointer: String) -> FieldProblem? {
        let length = password.unicodeScalars.count
        if length < minPasswordLength {
            return FieldProblem(pointer: pointer, message: "must be at least \(minPasswordLength) characters")
        }
        if length > maxPasswordLength {
            return FieldProblem(pointer: pointer, message: "must be at most \(maxPasswordLength) characters")
        }
        let lowered = password.lowercased()
        let address = email.lowercased()
        let localPart = address.split(separator: "@").first.map(String.init) ?? address
        if lowered == address || lowered == localPart || lowered.contains(address) {
            return FieldProblem(pointer: pointer, message: "must not be the email address")
        }
        if commonPasswords.contains(lowered) {
            return FieldProblem(pointer: pointer, message: "is one of the most commonly used passwords; choose another")
        }
        return nil
    }

    /// Passwords of at least 10 characters from the lists of most-used passwords (compared lower-cased).
    static let commonPasswords: Set<String> = [
        "1234567890", "12345678910", "123456789a", "0123456789", "0987654321", "1111111111", "1q2w3e4r5t",
        "1qaz2wsx3edc", "password1", "password12", "password123", "password1234", "passw0rd123", "qwertyuiop",
        "qwerty1234", "qwerty12345", "qwerty123456", "asdfghjkl1", "zxcvbnm123", "iloveyou123", "football123",
        "baseball123", "princess123", "sunshine123", "welcome123", "welcome1234", "letmein123", "trustno1234",
        "superman123", "starwars123", "dragon1234", "monkey1234", "abc1234567", "abcdefghij", "aaaaaaaaaa",
        "changeme123", "administrator", "admin12345", "admin123456", "adminadmin", "rootroot123", "testtest123",
        "test123456", "p@ssw0rd123", "p@ssword123", "computer123", "michael123", "jennifer123", "whatever123",
        "qazwsxedcrfv", "1q2w3e4r5t6y", "password!1", "kaizenkaizen", "kaizen12345",
    ]
}

/// One change recorded in a workspace's audit log.
public struct AuditEvent: Sendable, Hashable {
    public let id: String
    public let workspaceID: String
    public let at: Date
    /// `user` or `token`, and its id.
    public let actorType: String
    public let actorID: String
    public let clientAddress: String?
    public let requestID: String?
    /// e.g. `member.role_changed`, `token.created`.
    public let action: String
    public let targetType: String
    public let targetID: String
    public let details: [String: JSONValue]

    public init(
        id: String, workspaceID: String, at: Date, actorType: String, actorID: String, clientAddress: String?,
        requestID: String?, action: String, targetType: String, targetID: String, details: [String: JSONValue]
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.at = at
        self.actorType = actorType
        self.actorID = actorID
        self.clientAddress = clientAddress
        self.requestID = requestID
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.details = details
    }
}

/// Who makes a change and from where, carried down to the transaction that records it.
public struct AuditActor: Sendable, Hashable {
    public let type: String
    public let id: String
    public let clientAddress: String?
    public let requestID: String?

    public init(type: String, id: String, clientAddress: String?, requestID: String?) {
        self.type = type
        self.id = id
        self.clientAddress = clientAddress
        self.requestID = requestID
    }

    /// An operator's command on the server's own machine.
    public static func operatorCommand(_ name: String) -> AuditActor {
        AuditActor(type: "operator", id: name, clientAddress: nil, requestID: nil)
    }
}
