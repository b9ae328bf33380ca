import Domains
import Hummingbird
import NIOCore

/// Decodes finalize bodies with `KenshoJSON` (a single-pass parser several times faster than
/// Foundation's JSON on Linux) before the generated handler runs. The parsed document travels in
/// `PreparsedKensho.current`; the handler's own body becomes `{}`, so the generated decoding does no
/// work. The wire format, content-type checks and error mapping are unchanged.
struct KenshoDecodeMiddleware<Context: RequestContext>: RouterMiddleware {
    static var path: String { "/v1/ingest/kensho/finalize" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.method == .post, request.uri.path == Self.path,
            request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true
        else { return try await next(request, context) }
        var request = request
        // Already collected within the size limit by BodyLimitMiddleware.
        let buffer = try await request.collectBody(upTo: .max)
        let run = try KenshoJSON.decode(Array(buffer.readableBytesView))
        request.body = RequestBody(buffer: ByteBuffer(string: "{}"))
        return try await PreparsedKensho.$current.withValue(run) { try await next(request, context) }
    }
}

enum PreparsedKensho {
    @TaskLocal static var current: KenshoRun?
}
