import Domains
import Hummingbird
import NIOCore

/// Decodes finalize bodies with `KenshoJSON` (a single-pass parser several times faster than
/// Foundation's JSON on Linux) before the generated handler runs. The parsed document travels in
/// `PreparsedKensho.current`; the handler's own body becomes `{}`, so the generated decoding does no
/// work. The wire format, content-type checks and error mapping are unchanged.
///
/// Memory: the body is collected here, within the size limit (`BodyLimitMiddleware` leaves this path to
/// it), parsed in place, and let go before the finalize runs — no middleware frame keeps the document's
/// bytes alive while its runs are validated and written (a 100k-case document is 14 MB).
struct KenshoDecodeMiddleware<Context: RequestContext>: RouterMiddleware {
    static var path: String { "/v1/ingest/kensho/finalize" }
    let maxBytes: Int

    static func applies(to request: Request) -> Bool {
        request.method == .post && request.uri.path == path
            && request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard Self.applies(to: request) else { return try await next(request, context) }
        var request = request
        let run = try await Self.decode(&request, maxBytes: maxBytes)
        return try await PreparsedKensho.$current.withValue(run) { try await next(request, context) }
    }

    /// Collects and parses the body, then leaves the request with `{}`: the buffer dies with this frame.
    static func decode(_ request: inout Request, maxBytes: Int) async throws -> KenshoRun {
        let buffer = try await BodyLimitMiddleware<Context>.collect(&request, maxBytes: maxBytes)
        request.body = RequestBody(buffer: ByteBuffer(string: "{}"))
        try NULTextMiddleware<Context>.refuseNUL(in: buffer, kensho: true)
        return try buffer.withUnsafeReadableBytes { raw in
            try KenshoJSON.decode(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
        }
    }
}

enum PreparsedKensho {
    @TaskLocal static var current: KenshoRun?
}
