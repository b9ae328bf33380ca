import Domains
import Foundation
import Hummingbird
import HummingbirdCore

/// Checks query parameters against what `openapi.yaml` declares for the operation — type, enum,
/// bounds, length, required — before the generated decoding runs, so that a bad parameter is a
/// 400 naming it (`invalid_parameter`), never a body error with an empty pointer, and the document
/// and the server agree by construction.
struct QueryParameterMiddleware<Context: RequestContext>: RouterMiddleware {
    let rules: QueryParameterRules

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let parameters = rules.parameters(method: request.method.rawValue, path: request.uri.path) {
            try QueryParameterRules.check(request.uri.queryParameters, against: parameters)
        }
        return try await next(request, context)
    }
}

/// The query parameters of every operation, read from the OpenAPI document.
struct QueryParameterRules: Sendable {
    struct Parameter: Sendable {
        enum Kind: Sendable { case string, integer, boolean, number }
        let name: String
        let required: Bool
        let kind: Kind
        let allowed: [String]?
        let minimum: Int?
        let maximum: Int?
        let maxLength: Int?
        let minLength: Int?
        /// Set for an array (`style: form, explode: true`: the name repeated): at most this many values, each
        /// checked by the item rules above.
        let maxItems: Int?
    }

    struct Operation: Sendable {
        let method: String
        /// Path segments; nil matches any one non-empty segment (a `{parameter}`).
        let segments: [String?]
        let parameters: [Parameter]

        var literalCount: Int { segments.count { $0 != nil } }
    }

    let operations: [Operation]

    init(document: Data) {
        guard let root = try? JSONSerialization.jsonObject(with: document) as? [String: Any] else {
            operations = []
            return
        }
        let components = root["components"] as? [String: Any] ?? [:]
        let sharedParameters = components["parameters"] as? [String: Any] ?? [:]
        let schemas = components["schemas"] as? [String: Any] ?? [:]
        func resolve(_ node: Any?, in table: [String: Any]) -> [String: Any]? {
            guard let dict = node as? [String: Any] else { return nil }
            if let ref = dict["$ref"] as? String, let name = ref.split(separator: "/").last {
                return table[String(name)] as? [String: Any]
            }
            return dict
        }
        var operations: [Operation] = []
        for (path, item) in root["paths"] as? [String: Any] ?? [:] {
            guard let item = item as? [String: Any] else { continue }
            let shared = (item["parameters"] as? [Any] ?? []).compactMap { resolve($0, in: sharedParameters) }
            let segments: [String?] = path.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) }
            for (method, op) in item where method != "parameters" {
                guard let op = op as? [String: Any] else { continue }
                let own = (op["parameters"] as? [Any] ?? []).compactMap { resolve($0, in: sharedParameters) }
                let query = (shared + own).filter { $0["in"] as? String == "query" }.compactMap { p -> Parameter? in
                    guard let name = p["name"] as? String else { return nil }
                    let outer = resolve(p["schema"], in: schemas) ?? [:]
                    let isArray = outer["type"] as? String == "array"
                    let schema = isArray ? resolve(outer["items"], in: schemas) ?? [:] : outer
                    let kind: Parameter.Kind =
                        switch schema["type"] as? String {
                        case "integer": .integer
                        case "boolean": .boolean
                        case "number": .number
                        default: .string
                        }
                    return Parameter(
                        name: name, required: p["required"] as? Bool ?? false, kind: kind,
                        allowed: (schema["enum"] as? [Any])?.map { "\($0)" }, minimum: schema["minimum"] as? Int,
                        maximum: schema["maximum"] as? Int, maxLength: schema["maxLength"] as? Int,
                        minLength: schema["minLength"] as? Int, maxItems: isArray ? outer["maxItems"] as? Int ?? 100 : nil)
                }
                operations.append(Operation(method: method.uppercased(), segments: segments, parameters: query))
            }
        }
        self.operations = operations
    }

    func parameters(method: String, path: String) -> [Parameter]? {
        matching(path).first { $0.method == method }?.parameters
    }

    /// The methods declared on `path`, sorted; empty when the document has no such path.
    func methods(path: String) -> [String] {
        Set(matching(path).map(\.method)).sorted()
    }

    /// The operations of the template that matches `path` most exactly: a literal segment wins over a
    /// `{parameter}`, as the router decides (`/v1/notifications/read` is not `/v1/notifications/{id}`).
    func matching(_ path: String) -> [Operation] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let candidates = operations.filter { Self.matches($0, parts) }
        guard let best = candidates.map(\.literalCount).max() else { return [] }
        return candidates.filter { $0.literalCount == best }
    }

    static func matches(_ op: Operation, _ parts: ArraySlice<Substring>) -> Bool {
        op.segments.count == parts.count
            && zip(op.segments, parts).allSatisfy { segment, part in segment.map { $0 == part } ?? !part.isEmpty }
    }

    static func check(_ query: FlatDictionary<Substring, Substring>, against parameters: [Parameter]) throws {
        for parameter in parameters {
            let values = query[values: Substring(parameter.name)]
            guard let raw = values.first else {
                if parameter.required { throw DomainError.invalidParameter(parameter.name, "is required") }
                continue
            }
            if let maxItems = parameter.maxItems {
                if values.count > maxItems { throw DomainError.invalidParameter(parameter.name, "is given \(values.count) times; at most \(maxItems)") }
                for value in values { try check(String(value), against: parameter) }
                continue
            }
            if values.count > 1 { throw DomainError.invalidParameter(parameter.name, "is given \(values.count) times; give it once") }
            try check(String(raw), against: parameter)
        }
    }

    static func check(_ value: String, against parameter: Parameter) throws {
        switch parameter.kind {
        case .integer:
            guard let number = Int(value) else {
                throw DomainError.invalidParameter(parameter.name, "must be an integer\(range(parameter))")
            }
            if let min = parameter.minimum, number < min {
                throw DomainError.invalidParameter(parameter.name, "must be an integer\(range(parameter))")
            }
            if let max = parameter.maximum, number > max {
                throw DomainError.invalidParameter(parameter.name, "must be an integer\(range(parameter))")
            }
        case .number:
            guard let number = Double(value), number.isFinite else {
                throw DomainError.invalidParameter(parameter.name, "must be a number")
            }
        case .boolean:
            guard value == "true" || value == "false" else {
                throw DomainError.invalidParameter(parameter.name, "must be true or false")
            }
        case .string:
            if let minLength = parameter.minLength, value.unicodeScalars.count < minLength {
                throw DomainError.invalidParameter(
                    parameter.name, minLength == 1 ? "must not be empty" : "must be at least \(minLength) characters")
            }
            if let maxLength = parameter.maxLength, value.unicodeScalars.count > maxLength {
                throw DomainError.invalidParameter(parameter.name, "must be at most \(maxLength) characters")
            }
        }
        if let allowed = parameter.allowed, !allowed.contains(value) {
            throw DomainError.invalidParameter(parameter.name, "must be one of \(allowed.joined(separator: ", "))")
        }
    }

    static func range(_ p: Parameter) -> String {
        switch (p.minimum, p.maximum) {
        case let (min?, max?): " from \(min) to \(max)"
        case let (min?, nil): " of at least \(min)"
        case let (nil, max?): " of at most \(max)"
        default: ""
        }
    }
}
