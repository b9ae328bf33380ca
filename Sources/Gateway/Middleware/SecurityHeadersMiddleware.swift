import Hummingbird

/// Headers every answer carries, errors included (it runs outside the error envelope):
/// `X-Content-Type-Options: nosniff` always, and `Cache-Control: no-store` on anything answered to
/// a credential (a bearer token or a session cookie) — a minted token's secret, and every tenant's data, must never sit in a shared or
/// browser cache.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        // An attachment never runs in Kaizen's origin: an uploaded HTML or SVG file is sandboxed (no
        // script, no same-origin access) if a browser opens it; images still show inline in pages.
        if request.uri.path.hasPrefix("/v1/runs/"), request.uri.path.contains("/attachments/") {
            response.headers[.contentSecurityPolicy] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
        }
        if request.headers[.authorization] != nil || request.headers.contains(.cookie) || request.uri.path.hasPrefix("/v1/uploads/"),
            response.headers[.cacheControl] == nil
        {
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}
