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
        // Logout and marking notifications read take no body at all; pages (outside /v1) take forms.
        let path = request.uri.path
        guard request.method == .post || request.method == .put || request.method == .patch,
            path.hasPrefix("/v1/"), !path.hasPrefix("/v1/uploads/"), path != "/v1/auth/logout", !Self.isBodyless(path)
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

    /// `POST /v1/notifications/read` and `PATCH /v1/notifications/{id}/read`.
    static func isBodyless(_ path: String) -> Bool {
        guard path.hasPrefix("/v1/notifications/"), path.hasSuffix("/read") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).count <= 5
    }
}
