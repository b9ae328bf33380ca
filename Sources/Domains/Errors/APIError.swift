/// One invalid field: where (RFC 6901 JSON pointer into the request) and why.
public struct FieldProblem: Sendable, Hashable {
    public let pointer: String
    public let message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }
}

/// Every failure a client can see. The gateway renders it as
/// `{"error":{"code","message","details"}}` with `status`.
public struct APIError: Error, Sendable, Equatable {
    public let status: Int
    public let code: String
    public let message: String
    public let details: JSONValue
    /// Seconds, for 429 and 503.
    public let retryAfter: Int?

    public init(status: Int, code: String, message: String, details: JSONValue = .null, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retryAfter = retryAfter
    }

    public static func malformedJSON(_ message: String) -> APIError {
        APIError(status: 400, code: "malformed_json", message: message)
    }
    public static func badRequest(_ message: String, details: JSONValue = .null) -> APIError {
        APIError(status: 400, code: "bad_request", message: message, details: details)
    }
    /// 400 for a query, path or header parameter: named in `details.parameter`, and as a pointer
    /// `/<name>` in `details.errors` so clients read it like a body problem.
    public static func invalidParameter(_ name: String, in location: String = "query", _ message: String) -> APIError {
        APIError(
            status: 400, code: "invalid_parameter", message: "\(location) parameter '\(name)' \(message)",
            details: [
                "parameter": .string(name), "in": .string(location),
                "errors": .array([["pointer": .string("/" + jsonPointerEscape(name)), "message": .string(message)]]),
            ])
    }
    public static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(status: 415, code: "unsupported_media_type", message: message)
    }
    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: 401, code: "unauthorized", message: message)
    }
    public static func forbidden(_ message: String) -> APIError {
        APIError(status: 403, code: "forbidden", message: message)
    }
    public static func notFound(_ message: String) -> APIError {
        APIError(status: 404, code: "not_found", message: message)
    }
    public static func conflict(_ message: String, details: JSONValue = .null) -> APIError {
        APIError(status: 409, code: "conflict", message: message, details: details)
    }
    public static func payloadTooLarge(limit: Int) -> APIError {
        APIError(
            status: 413, code: "payload_too_large",
            message: "request body exceeds the limit of \(limit) bytes", details: ["limitBytes": .int(limit)])
    }
    /// 422 with every problem as a JSON pointer, in `details.errors`.
    public static func validation(_ problems: [FieldProblem]) -> APIError {
        let first = problems.first.map { "\($0.pointer): \($0.message)" } ?? "invalid request"
        let message = problems.count > 1 ? "\(first) (and \(problems.count - 1) more)" : first
        return APIError(
            status: 422, code: "validation_failed", message: message,
            details: ["errors": .array(problems.map { ["pointer": .string($0.pointer), "message": .string($0.message)] })])
    }
    public static func validation(pointer: String, _ message: String) -> APIError {
        validation([FieldProblem(pointer: pointer, message: message)])
    }
    public static func rateLimited(_ message: String, retryAfter: Int, details: JSONValue = .null) -> APIError {
        APIError(status: 429, code: "rate_limited", message: message, details: details, retryAfter: retryAfter)
    }
    public static let internalError = APIError(
        status: 500, code: "internal", message: "internal server error; the incident was logged")
    public static func unavailable(_ message: String, code: String = "shard_unavailable", details: JSONValue = .null)
        -> APIError
    {
        APIError(status: 503, code: code, message: message, details: details, retryAfter: 5)
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901 §3).
public func jsonPointerEscape(_ token: String) -> String {
    token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty, self.contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[rest.startIndex..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
