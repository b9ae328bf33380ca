import Hummingbird
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime

/// Builds the router: error envelope, authentication and rate limits, body limit, then the
/// handlers generated from `openapi.yaml`.
public enum GatewayRouter {
    public static func build(_ deps: GatewayDependencies, maxBodyBytes: Int) throws -> Router<KaizenRequestContext> {
        try build(deps, maxBodyBytes: maxBodyBytes, context: KaizenRequestContext.self)
    }

    /// The same router for another request context (benchmarks drive the responder without sockets).
    public static func build<Context: RequestContext>(
        _ deps: GatewayDependencies, maxBodyBytes: Int, context: Context.Type
    ) throws -> Router<Context> {
        let router = Router(context: Context.self)
        let operations = QueryParameterRules(document: deps.document.json)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: RequestOriginMiddleware())
        router.add(middleware: ErrorEnvelopeMiddleware(logger: deps.logger))
        router.add(middleware: MethodNotAllowedMiddleware(rules: operations))
        router.add(
            middleware: AuthMiddleware(
                authenticator: deps.authenticator, limiter: deps.limiter, sessions: deps.sessions,
                publicURL: deps.ingest.publicURL))
        router.add(middleware: CachedRunReadMiddleware(cache: deps.runResponses))
        router.add(middleware: BodyLimitMiddleware(maxBytes: maxBodyBytes))
        router.add(middleware: ContentTypeMiddleware())
        router.add(middleware: QueryParameterMiddleware(rules: operations))
        router.add(middleware: NULTextMiddleware())
        router.add(middleware: KenshoDecodeMiddleware(maxBytes: maxBodyBytes))
        try WebPages(deps: deps).register(on: router)
        // Compact JSON (pretty-printing only costs bytes), with stable key order and readable URLs.
        try KaizenAPI(deps: deps).registerHandlers(
            on: router, configuration: Configuration(jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes]), middlewares: [RawLocationMiddleware()])
        return router
    }
}
