import Domains
import HTTPTypes
import Hummingbird

/// Authenticates `/v1` requests (all but the OpenAPI document), applies the token-class rate
/// limit, and runs the rest of the chain with the caller in `RequestIdentity.current`.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: Authenticator
    let limiter: RateLimiter

    /// Health, version, the documents, and presigned uploads (authorized by their signature).
    static func isPublic(_ path: String) -> Bool {
        !path.hasPrefix("/v1/") || path == "/v1/openapi.json" || path.hasPrefix("/v1/schemas/")
            || path.hasPrefix("/v1/uploads/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if Self.isPublic(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw DomainError.unauthorized("missing Authorization header; send 'Authorization: Bearer krt_…'")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw DomainError.unauthorized("the Authorization header must use the Bearer scheme")
        }
        let identity = try await authenticator.authenticate(secret: parts[1])
        let limit = limiter.limit(for: identity.tokenClass)
        switch limiter.decide(tokenID: identity.tokenID, tokenClass: identity.tokenClass) {
        case .limited(let retryAfter):
            throw DomainError.rateLimited(
                "rate limit of \(limit.perMinute) requests/min for \(identity.tokenClass.rawValue) tokens exceeded; retry in \(retryAfter)s",
                retryAfter: retryAfter,
                details: ["limitPerMinute": .int(limit.perMinute), "tokenClass": .string(identity.tokenClass.rawValue)])
        case .allowed(let remaining):
            var response = try await RequestIdentity.$current.withValue(identity) {
                try await next(request, context)
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
