import Domains
import Foundation
import Hummingbird
import Logging
import OpenAPIRuntime

/// Outermost middleware: whatever fails below becomes `{"error":{"code","message","details"}}`
/// with the right status. Internals never leak: unexpected errors are logged and answered with 500.
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let apiError = ErrorMapping.apiError(for: error, method: request.method.rawValue, path: request.uri.path)
            if apiError.status == 503 {
                logger.warning("request failed: \(apiError.message)", metadata: ["path": "\(request.uri.path)"])
            } else if apiError.status >= 500 {
                logger.error(
                    "request failed",
                    metadata: [
                        "method": "\(request.method)", "path": "\(request.uri.path)",
                        "error": "\(ErrorMapping.logDescription(error))",
                    ])
            }
            return ErrorMapping.response(for: apiError)
        }
    }
}

/// Classifies errors from every layer into the API's error vocabulary.
public enum ErrorMapping {
    /// What to log of an unexpected error. The OpenAPI runtime's `ServerError` describes the whole
    /// request, headers included, so it would put bearer tokens in the log: keep only the operation
    /// and the underlying error.
    static func logDescription(_ error: any Error) -> String {
        if let error = error as? ServerError {
            return "\(error.operationID): \(String(reflecting: error.underlyingError))"
        }
        return String(reflecting: error)
    }

    /// The one place where a failure becomes an HTTP status: the domain says what went wrong, this says
    /// how HTTP spells it.
    public static func status(of kind: DomainError.Kind) -> Int {
        switch kind {
        case .badRequest: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict: 409
        case .payloadTooLarge: 413
        case .unsupportedMediaType: 415
        case .validation: 422
        case .rateLimited: 429
        case .internal: 500
        case .unavailable: 503
        }
    }

    public static func apiError(for error: any Error, method: String, path: String) -> HTTPFailure {
        switch error {
        case let error as DomainError:
            return HTTPFailure(error)
        case let error as ServerError:
            // Errors of our handlers arrive wrapped by the OpenAPI runtime; so do its own request-parsing errors,
            // which say themselves that they are the client's fault.
            let underlying = error.underlyingError
            if underlying is DomainError || underlying is DecodingError {
                return apiError(for: underlying, method: method, path: path)
            }
            if let convertible = underlying as? any HTTPResponseConvertible, (400..<500).contains(convertible.httpStatus.code) {
                return HTTPFailure(.badRequest(error.causeDescription))
            }
            return HTTPFailure(.internalError)
        case let error as DecodingError:
            return HTTPFailure(decodingError(error))
        case let error as HTTPError:
            switch error.status.code {
            case 404: return HTTPFailure(.notFound("no route for \(method) \(path)"))
            case 405: return HTTPFailure(.methodNotAllowed(method, path: path))
            case 413: return HTTPFailure(.payloadTooLarge(limit: 0))
            case 400..<500:
                // Hummingbird's own 4xx (e.g. 408): keep its status, describe it as a bad request.
                return HTTPFailure(
                    status: error.status.code, .badRequest(error.body ?? error.status.reasonPhrase))
            default: return HTTPFailure(.internalError)
            }
        default:
            return HTTPFailure(.internalError)
        }
    }

    /// Malformed JSON is a 400; well-formed JSON with a bad field is a 422 pointing at the field.
    static func decodingError(_ error: DecodingError) -> DomainError {
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                if context.debugDescription.contains("additional properties") {
                    return .validation(pointer: "", context.debugDescription)
                }
                return .malformedJSON("the request body is not valid JSON: \(context.debugDescription)")
            }
            return .validation(pointer: pointer(context.codingPath), "has an invalid value: \(context.debugDescription)")
        case .keyNotFound(let key, let context):
            return .validation(pointer: pointer(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return .validation(pointer: pointer(context.codingPath), "must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            return .validation(pointer: pointer(context.codingPath), "must be \(typeName(type)), not null")
        @unknown default:
            return .badRequest("the request body could not be decoded")
        }
    }

    static func pointer(_ path: [any CodingKey]) -> String {
        path.map { key in "/" + jsonPointerEscape(key.intValue.map(String.init) ?? key.stringValue) }.joined()
    }

    static func typeName(_ type: Any.Type) -> String {
        let name = "\(type)"
        // Containers first: `[String: Any]` names "String" too.
        if name.hasPrefix("Dictionary") { return "an object" }
        if name.hasPrefix("Array") { return "an array" }
        if name.contains("String") { return "a string" }
        if name.contains("Int") { return "an integer" }
        if name.contains("Double") || name.contains("Float") { return "a number" }
        if name.contains("Bool") { return "a boolean" }
        if name.contains("Array") { return "an array" }
        return "an object"
    }

    struct Envelope: Encodable {
        struct Body: Encodable {
            let code: String
            let message: String
            let details: JSONValue
        }
        let error: Body
    }

    /// Stable key order and unescaped slashes, like every other answer.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static func response(for error: DomainError) -> Response {
        response(for: HTTPFailure(error))
    }

    public static func response(for failure: HTTPFailure) -> Response {
        let error = failure.error
        let body = Envelope(error: .init(code: error.code, message: error.message, details: error.details))
        let data = (try? ErrorMapping.encoder.encode(body)) ?? Data(#"{"error":{"code":"internal","message":"internal server error","details":null}}"#.utf8)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        if failure.status == 401 { headers[.wwwAuthenticate] = #"Bearer realm="kaizen""# }
        return Response(
            status: HTTPResponse.Status(code: failure.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A domain error with the HTTP status it is answered with.
public struct HTTPFailure: Sendable, Equatable {
    public let status: Int
    public let error: DomainError

    public init(status: Int? = nil, _ error: DomainError) {
        self.status = status ?? ErrorMapping.status(of: error.kind)
        self.error = error
    }

    public var code: String { error.code }
    public var message: String { error.message }
    public var details: JSONValue { error.details }
    public var retryAfter: Int? { error.retryAfter }
}
