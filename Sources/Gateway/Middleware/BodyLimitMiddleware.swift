import Domains
import Hummingbird
import NIOCore

/// Refuses bodies over the configured limit with 413, whether announced by `Content-Length`
/// or streamed chunked, and hands the handlers a body already collected within the limit.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBytes,
            !request.uri.path.hasPrefix("/v1/uploads/")
        {
            throw DomainError.payloadTooLarge(limit: maxBytes)
        }
        if request.method == .get || request.method == .head { return try await next(request, context) }
        // Attachments stream to disk, bounded by the size declared at init.
        if request.uri.path.hasPrefix("/v1/uploads/") { return try await next(request, context) }
        // A kensho document is collected (within this limit) and parsed by KenshoDecodeMiddleware, which lets
        // the bytes go once parsed; collected here, this frame would hold them for the whole finalize.
        if KenshoDecodeMiddleware<Context>.applies(to: request) { return try await next(request, context) }
        var request = request
        _ = try await Self.collect(&request, maxBytes: maxBytes)
        return try await next(request, context)
    }

    /// The body, collected into the request, or 413 past `maxBytes` (also for a chunked body that streamed past it).
    static func collect(_ request: inout Request, maxBytes: Int) async throws -> ByteBuffer {
        do {
            return try await request.collectBody(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw DomainError.payloadTooLarge(limit: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw DomainError.payloadTooLarge(limit: maxBytes)
        }
    }
}
