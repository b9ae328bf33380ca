import Domains

/// The authenticated caller of the request being handled. Set by `AuthMiddleware` around the
/// OpenAPI handlers, which have no Hummingbird context of their own.
public enum RequestIdentity {
    @TaskLocal public static var current: Identity?
    /// The credential's secret, for a long-lived stream to check again later that it still authenticates.
    @TaskLocal static var secret: String?

    /// The caller, or 401 when the route was reached without authentication.
    static func required() throws -> Identity {
        guard let identity = current else { throw DomainError.unauthorized("authentication required") }
        return identity
    }
}

extension Identity {
    /// Who did it, for "changed by" fields: the user, or the workspace token when there is none.
    var actor: String { userID ?? tokenID }
}
