import Domains
import Hummingbird

/// Every operation with a body except attachment uploads takes JSON: a body sent without
/// `Content-Type`, or with another one, is answered 415 instead of being guessed at.
/// (Uploads accept any type, as an S3 presigned PUT does: the bytes are checked against the
/// size and sha256 declared at init, not against a media type.)
struct ContentTypeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // Logout takes no body at all; pages (outside /v1) take forms.
        guard request.method == .post || request.method == .put || request.method == .patch,
            request.uri.path.hasPrefix("/v1/"), !request.uri.path.hasPrefix("/v1/uploads/"), request.uri.path != "/v1/auth/logout"
        else { return try await next(request, context) }
        guard let type = request.headers[.contentType] else {
            throw DomainError.unsupportedMediaType("this operation needs a JSON body: send Content-Type: application/json")
        }
        let media = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) else {
            throw DomainError.unsupportedMediaType("this operation takes application/json, not '\(media)'")
        }
        return try await next(request, context)
    }
}
