import Domains
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Serves `GET /v1/runs/:id` from `RunResponseCache` when the caller may read the run, skipping the
/// generated handler, its actor hops and its JSON encoding; on a miss the handler answers and the
/// encoded body is kept. Runs inside `AuthMiddleware`, so authentication and rate limits still apply.
struct CachedRunReadMiddleware<Context: RequestContext>: RouterMiddleware {
    let cache: RunResponseCache
    static var prefix: String { "/v1/runs/" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.method == .get, request.uri.query == nil, let identity = RequestIdentity.current,
            let runID = Self.runID(request.uri.path)
        else { return try await next(request, context) }
        if let entry = cache.get(runID), let grant = identity.grant(workspaceID: entry.workspaceID),
            entry.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
        {
            return Response(status: .ok, headers: [.contentType: entry.contentType], body: .init(byteBuffer: entry.body))
        }
        let fill = RunReadFill()
        var response = try await RunReadFill.$current.withValue(fill) { try await next(request, context) }
        guard response.status == .ok, let owner = fill.value else { return response }
        let sink = BodySink()
        try await response.body.write(CollectingWriter(sink: sink))
        let body = sink.buffer
        response.body = .init(byteBuffer: body)
        cache.put(
            runID,
            .init(workspaceID: owner.workspaceID, accessMode: owner.accessMode,
                  contentType: response.headers[.contentType] ?? "application/json", body: body))
        return response
    }

    /// The id of `/v1/runs/<id>` exactly (not its sub-resources).
    static func runID(_ path: String) -> String? {
        guard path.hasPrefix(prefix) else { return nil }
        let id = path.dropFirst(prefix.count)
        guard !id.isEmpty, !id.contains("/") else { return nil }
        return String(id)
    }
}

final class BodySink: Sendable {
    private let collected = Mutex(ByteBuffer())
    func append(_ buffer: ByteBuffer) { collected.withLock { $0.writeImmutableBuffer(buffer) } }
    var buffer: ByteBuffer { collected.withLock { $0 } }
}

struct CollectingWriter: ResponseBodyWriter {
    let sink: BodySink
    mutating func write(_ buffer: ByteBuffer) async throws { sink.append(buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
