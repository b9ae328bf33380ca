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
        var timing = Timing()
        let run = try await Self.decode(&request, maxBytes: maxBytes, timing: &timing)
        // Where a finalize's time goes, for the debug log (with the workspace's "finalize phases").
        context.logger.debug(
            "kensho document read",
            metadata: [
                "cases": "\(run.cases?.count ?? 0)", "bytes": "\(timing.bytes)", "collectMs": "\(milliseconds(timing.collect))",
                "parseMs": "\(milliseconds(timing.parse))",
            ])
        return try await PreparsedKensho.$current.withValue(run) { try await next(request, context) }
    }

    /// Collects and parses the body, then leaves the request with `{}`: the buffer dies with this frame.
    struct Timing {
        var bytes = 0
        var collect = Duration.zero
        var parse = Duration.zero
    }

    static func decode(_ request: inout Request, maxBytes: Int, timing: inout Timing) async throws -> KenshoRun {
        let clock = ContinuousClock()
        let started = clock.now
        let buffer = try await BodyLimitMiddleware<Context>.collect(&request, maxBytes: maxBytes)
        let collected = clock.now
        request.body = RequestBody(buffer: ByteBuffer(string: "{}"))
        try NULTextMiddleware<Context>.refuseNUL(in: buffer, kensho: true)
        let run = try buffer.withUnsafeReadableBytes { raw in
            try KenshoJSON.decode(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
        }
        timing = Timing(bytes: buffer.readableBytes, collect: collected - started, parse: clock.now - collected)
        return run
    }
}

enum PreparsedKensho {
    @TaskLocal static var current: KenshoRun?
}
