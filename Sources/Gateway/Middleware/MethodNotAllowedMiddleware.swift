import Domains
import Hummingbird

/// A method the document does not declare on a path it does declare is 405 with `Allow` listing
/// the declared ones (RFC 9110 §15.5.6), not a 404 that would say the resource does not exist.
/// The operations come from the OpenAPI document, like the query rules.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let rules: QueryParameterRules

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let method = request.method.rawValue
        let path = request.uri.path
        if rules.parameters(method: method, path: path) == nil {
            let allowed = rules.methods(path: path)
            // HEAD is answered wherever GET is (Hummingbird serves it from the GET route).
            if !allowed.isEmpty, !(method == "HEAD" && allowed.contains("GET")) {
                var response = ErrorMapping.response(
                    for: .methodNotAllowed(method, path: path))
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
        }
        return try await next(request, context)
    }
}
