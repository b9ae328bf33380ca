/// One invalid field: where (RFC 6901 JSON pointer into the request) and why.
public struct FieldProblem: Sendable, Hashable {
    public let pointer: String
    public let message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }
}

/// Every failure a caller can see, in the domain's words: what kind of failure, a stable machine
/// `code`, a sentence, and structured `details`. Layers below the gateway throw these; the gateway
/// alone decides the HTTP status and renders `{"error":{"code","message","details"}}`.
public struct DomainError: Error, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The request itself is unusable (malformed JSON, a bad parameter).
        case badRequest
        case unsupportedMediaType
        case unauthorized
        case forbidden
        /// Absent, or someone else's: the two are never distinguished.
        case notFound
        case methodNotAllowed
        case conflict
        case payloadTooLarge
        /// Well-formed input with invalid fields, each named by a JSON pointer in `details.errors`.
        case validation
        /// Over a quota; `retryAfter` says when to try again.
        case rateLimited
        /// A dependency (a database server, the attachment store) does not answer; retry later.
        case unavailable
        /// A bug or an unexpected failure: logged, never described to the caller.
        case `internal`
    }

    public let kind: Kind
    public let code: String
    public let message: String
    public let details: JSONValue
    /// Seconds, for `.rateLimited` and `.unavailable`.
    public let retryAfter: Int?

    public init(kind: Kind, code: String, message: String, details: JSONValue = .null, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details
        self.retryAfter = retryAfter
    }

    public static func malformedJSON(_ message: String) -> DomainError {
        DomainError(kind: .badRequest, code: "malformed_json", message: message)
    }
    public static func badRequest(_ message: String, details: JSONValue = .null) -> DomainError {
        DomainError(kind: .badRequest, code: "bad_request", message: message, details: details)
    }
    /// A query, path or header parameter: named in `details.parameter`, and as a pointer
    /// `/<name>` in `details.errors` so clients read it like a body problem.
    public static func invalidParameter(_ name: String, in location: String = "query", _ message: String) -> DomainError {
        DomainError(
            kind: .badRequest, code: "invalid_parameter", message: "\(location) parameter '\(name)' \(message)",
            details: [
                "parameter": .string(name), "in": .string(location),
                "errors": .array([["pointer": .string("/" + jsonPointerEscape(name)), "message": .string(message)]]),
            ])
    }
    public static func unsupportedMediaType(_ message: String) -> DomainError {
        DomainError(kind: .unsupportedMediaType, code: "unsupported_media_type", message: message)
    }
    public static func unauthorized(_ message: String) -> DomainError {
        DomainError(kind: .unauthorized, code: "unauthorized", message: message)
    }
    public static func forbidden(_ message: String) -> DomainError {
        DomainError(kind: .forbidden, code: "forbidden", message: message)
    }
    public static func notFound(_ message: String) -> DomainError {
        DomainError(kind: .notFound, code: "not_found", message: message)
    }
    public static func methodNotAllowed(_ method: String, path: String) -> DomainError {
        DomainError(kind: .methodNotAllowed, code: "method_not_allowed", message: "\(method) is not allowed on \(path)")
    }
    public static func conflict(_ message: String, details: JSONValue = .null) -> DomainError {
        DomainError(kind: .conflict, code: "conflict", message: message, details: details)
    }
    /// A unique constraint refused a row: someone (another request, another node) wrote it first.
    /// Callers that can recover (answer with the existing row) match `isUniqueViolation`.
    public static func uniqueViolation(constraint: String) -> DomainError {
        DomainError(
            kind: .conflict, code: "conflict", message: "the resource already exists",
            details: ["constraint": .string(constraint)])
    }
    public var isUniqueViolation: Bool {
        kind == .conflict && details["constraint"] != nil
    }
    public static func payloadTooLarge(limit: Int) -> DomainError {
        DomainError(
            kind: .payloadTooLarge, code: "payload_too_large",
            message: "request body exceeds the limit of \(limit) bytes", details: ["limitBytes": .int(limit)])
    }
    /// Every problem as a JSON pointer, in `details.errors`.
    public static func validation(_ problems: [FieldProblem]) -> DomainError {
        let first = problems.first.map { "\($0.pointer): \($0.message)" } ?? "invalid request"
        let message = problems.count > 1 ? "\(first) (and \(problems.count - 1) more)" : first
        return DomainError(
            kind: .validation, code: "validation_failed", message: message,
            details: ["errors": .array(problems.map { ["pointer": .string($0.pointer), "message": .string($0.message)] })])
    }
    /// The JSON pointers a validation failure names.
    public var pointers: [String] {
        guard case .object(let object) = details, case .array(let errors)? = object["errors"] else { return [] }
        return errors.compactMap { error in
            guard case .object(let fields) = error, case .string(let pointer)? = fields["pointer"] else { return nil }
            return pointer
        }
    }

    public static func validation(pointer: String, _ message: String) -> DomainError {
        validation([FieldProblem(pointer: pointer, message: message)])
    }
    public static func rateLimited(_ message: String, retryAfter: Int, details: JSONValue = .null) -> DomainError {
        DomainError(kind: .rateLimited, code: "rate_limited", message: message, details: details, retryAfter: retryAfter)
    }
    public static let internalError = DomainError(
        kind: .internal, code: "internal", message: "internal server error; the incident was logged")
    public static func unavailable(_ message: String, code: String = "shard_unavailable", details: JSONValue = .null)
        -> DomainError
    {
        DomainError(kind: .unavailable, code: code, message: message, details: details, retryAfter: 5)
    }
    /// A database server does not answer. Which one by index only: its address is for the operator's log.
    public static func shardUnavailable(server: Int) -> DomainError {
        .unavailable("database server \(server) does not answer; retry shortly", details: ["server": .int(server)])
    }
    public static func blobStoreUnavailable(_ message: String) -> DomainError {
        .unavailable("the attachment store failed: \(message); retry shortly", code: "blob_store_unavailable")
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
