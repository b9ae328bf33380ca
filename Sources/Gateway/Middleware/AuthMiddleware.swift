import Domains
import HTTPTypes
import Hummingbird
import Tenancy

/// Authenticates `/v1` requests (all but the OpenAPI document), applies the token-class rate
/// limit, and runs the rest of the chain with the caller in `RequestIdentity.current`.
///
/// A browser authenticates with the session cookie instead; then every state-changing request must also
/// carry the session's CSRF proof (`X-CSRF-Token`) or come from the server's own origin (`Origin`), so
/// that another site cannot make the browser act. A bearer token, which a browser never sends on its
/// own, needs neither.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: Authenticator
    let limiter: RateLimiter
    let sessions: SessionCookies
    let publicURL: PublicURL

    /// Health, version, the documents, presigned uploads (authorized by their signature), and the ways in:
    /// signing in, redeeming a set-password link, accepting an invitation.
    static func isPublic(_ path: String) -> Bool {
        !path.hasPrefix("/v1/") || path == "/v1/openapi.json" || path.hasPrefix("/v1/schemas/")
            || path.hasPrefix("/v1/uploads/") || path == "/v1/auth/login" || path == "/v1/auth/password-links/redeem"
            || path == "/v1/auth/invitations/accept"
    }

    static func isSafe(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }

    func isOwnOrigin(_ origin: String) -> Bool { OwnOrigin.matches(origin, publicURL: publicURL.value) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if Self.isPublic(request.uri.path) { return try await next(request, context) }
        let identity: Identity
        let secret: Substring
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw DomainError.unauthorized("the Authorization header must use the Bearer scheme")
            }
            secret = parts[1]
            identity = try await authenticator.authenticate(secret: secret)
        } else if let cookie = SessionCookies.secret(in: request.headers) {
            secret = cookie
            identity = try await authenticator.authenticate(secret: cookie)
            if !Self.isSafe(request.method) {
                let proven = request.headers[.csrfToken].map { sessions.verify(csrf: $0, sessionTokenID: identity.tokenID) } ?? false
                guard proven || request.headers[.origin].map(isOwnOrigin) == true else {
                    throw DomainError.forbidden(
                        "a change made with the session cookie needs the session's CSRF token in X-CSRF-Token (from the sign-in answer or GET /v1/me)")
                }
            }
        } else {
            throw DomainError.unauthorized("missing Authorization header; send 'Authorization: Bearer krt_…' or sign in")
        }
        let limit = limiter.limit(for: identity.tokenClass)
        switch limiter.decide(tokenID: identity.tokenID, tokenClass: identity.tokenClass) {
        case .limited(let retryAfter):
            throw DomainError.rateLimited(
                "rate limit of \(limit.perMinute) requests/min for \(identity.tokenClass.rawValue) tokens exceeded; retry in \(retryAfter)s",
                retryAfter: retryAfter,
                details: ["limitPerMinute": .int(limit.perMinute), "tokenClass": .string(identity.tokenClass.rawValue)])
        case .allowed(let remaining):
            var response = try await RequestIdentity.$current.withValue(identity) {
                try await RequestIdentity.$secret.withValue(String(secret)) { try await next(request, context) }
            }
            response.headers[.rateLimitLimit] = String(limit.perMinute)
            response.headers[.rateLimitRemaining] = String(remaining)
            return response
        }
    }
}

extension HTTPField.Name {
    static let rateLimitLimit = Self("X-RateLimit-Limit")!
    static let rateLimitRemaining = Self("X-RateLimit-Remaining")!
}

/// Whether an `Origin` header names this server: the scheme, host and port of its public URL.
enum OwnOrigin {
    static func matches(_ origin: String, publicURL: String) -> Bool {
        var own = publicURL.lowercased()
        while own.hasSuffix("/") { own.removeLast() }
        if let schemeEnd = own.range(of: "://"), let path = own[schemeEnd.upperBound...].firstIndex(of: "/") {
            own = String(own[..<path])
        }
        return origin.lowercased() == own
    }
}
