import Foundation
import Yams

/// The OpenAPI document, read once from the bundled `openapi.yaml` (the file the server stubs are
/// generated from) and served as JSON at `/v1/openapi.json`.
public struct OpenAPIDocument: Sendable {
    public let json: Data
    /// kensho/v1 as a standalone JSON Schema, cut from the same document's `KenshoRun` component.
    public let kenshoSchema: Data

    /// - Parameter publicURL: replaces the document's `servers` so generated SDKs point at this deployment.
    /// - Parameter maxAttachmentBytes: stated as the maximum `size` an attachment may declare.
    public init(publicURL: String?, maxAttachmentBytes: Int64? = nil) throws {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw CocoaError(.fileNoSuchFile)
        }
        let yaml = try String(contentsOf: url, encoding: .utf8)
        guard var object = try Yams.load(yaml: yaml) as? [String: Any] else { throw CocoaError(.fileReadCorruptFile) }
        object = Self.expandNullable(object) as? [String: Any] ?? object
        object = Self.optionalRequestFieldsAcceptNull(object)
        if let maxAttachmentBytes,
            var components = object["components"] as? [String: Any], var schemas = components["schemas"] as? [String: Any],
            var declaration = schemas["AttachmentDeclaration"] as? [String: Any],
            var properties = declaration["properties"] as? [String: Any], var size = properties["size"] as? [String: Any]
        {
            size["maximum"] = maxAttachmentBytes
            properties["size"] = size
            declaration["properties"] = properties
            schemas["AttachmentDeclaration"] = declaration
            components["schemas"] = schemas
            object["components"] = components
        }
        if let publicURL {
            object["servers"] = [["url": publicURL, "description": "This Kaizen server"]]
        }
        self.json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        self.kenshoSchema = try JSONSerialization.data(
            withJSONObject: Self.jsonSchema(root: "KenshoRun", document: object), options: [.sortedKeys])
    }

    /// A JSON Schema 2020-12 document for one component and everything it references,
    /// with `#/components/schemas/X` references rewritten to `#/$defs/X`.
    static func jsonSchema(root: String, document: [String: Any]) -> [String: Any] {
        let schemas = ((document["components"] as? [String: Any])?["schemas"] as? [String: Any]) ?? [:]
        var defs: [String: Any] = [:]
        var pending = [root]
        func rewrite(_ node: Any) -> Any {
            if let array = node as? [Any] { return array.map(rewrite) }
            guard var dict = node as? [String: Any] else { return node }
            if let ref = dict["$ref"] as? String, ref.hasPrefix("#/components/schemas/") {
                let name = String(ref.dropFirst("#/components/schemas/".count))
                if defs[name] == nil && !pending.contains(name) { pending.append(name) }
                dict["$ref"] = "#/$defs/\(name)"
            }
            return dict.mapValues(rewrite)
        }
        while let name = pending.popLast() {
            defs[name] = [:]  // reserve, so cycles terminate
            defs[name] = rewrite(schemas[name] ?? [:])
        }
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://kaizen.dev/schemas/kensho-v1.json",
            "title": "kensho/v1 run",
            "$ref": "#/$defs/\(root)",
            "$defs": defs,
        ]
    }

    /// Rewrites `x-kaizen-nullable: {type: T, …}` into `type: [T, "null"], …`.
    ///
    /// swift-openapi-generator omits a nil Optional when encoding, even for a property that is
    /// required and nullable (apple/swift-openapi-generator#934), so such a field would vanish
    /// from responses instead of being `null`. In `openapi.yaml` these fields carry their real
    /// schema under this extension, which the generator reads as "any JSON value" (encoded
    /// always, `null` included); the published document states the precise type.
    static func expandNullable(_ node: Any) -> Any {
        if let array = node as? [Any] { return array.map(expandNullable) }
        guard var dict = node as? [String: Any] else { return node }
        if let inner = dict.removeValue(forKey: "x-kaizen-nullable") as? [String: Any] {
            for (key, value) in inner where key != "type" { dict[key] = value }
            if let type = inner["type"] as? String { dict["type"] = [type, "null"] }
            if let ref = inner["$ref"] {
                dict["$ref"] = nil
                dict["anyOf"] = [["$ref": ref], ["type": "null"]]
            }
        }
        return dict.mapValues(expandNullable)
    }

    /// The server reads `null` in an optional request field as the field's absence (the generated
    /// decoding and `KenshoJSON` both do), so the published document says so: every optional
    /// property of a schema reachable from a request body also accepts `null`.
    static func optionalRequestFieldsAcceptNull(_ document: [String: Any]) -> [String: Any] {
        var document = document
        guard var components = document["components"] as? [String: Any],
            var schemas = components["schemas"] as? [String: Any]
        else { return document }
        var pending: [String] = []
        func collectRefs(_ node: Any) {
            if let array = node as? [Any] { array.forEach(collectRefs) }
            guard let dict = node as? [String: Any] else { return }
            if let ref = dict["$ref"] as? String, ref.hasPrefix("#/components/schemas/") {
                pending.append(String(ref.dropFirst("#/components/schemas/".count)))
            }
            dict.values.forEach(collectRefs)
        }
        for item in (document["paths"] as? [String: Any] ?? [:]).values {
            for op in (item as? [String: Any] ?? [:]).values {
                collectRefs(((op as? [String: Any])?["requestBody"] as? [String: Any]) ?? [:])
            }
        }
        var seen: Set<String> = []
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let schema = schemas[name] as? [String: Any] else { continue }
            collectRefs(schema)
            schemas[name] = nullableOptionals(schema)
        }
        components["schemas"] = schemas
        document["components"] = components
        return document
    }

    /// `schema` with its optional properties (and those of inline objects within it) accepting null.
    static func nullableOptionals(_ schema: [String: Any]) -> [String: Any] {
        var schema = schema
        if var properties = schema["properties"] as? [String: Any] {
            let required = Set(schema["required"] as? [String] ?? [])
            for (key, value) in properties {
                guard var property = value as? [String: Any] else { continue }
                property = nullableOptionals(property)
                if !required.contains(key) {
                    if let type = property["type"] as? String {
                        property["type"] = [type, "null"]
                        if var values = property["enum"] as? [Any] {
                            values.append(NSNull())
                            property["enum"] = values
                        }
                    } else if let ref = property.removeValue(forKey: "$ref") {
                        property["anyOf"] = [["$ref": ref], ["type": "null"]]
                    }
                }
                properties[key] = property
            }
            schema["properties"] = properties
        }
        if let items = schema["items"] as? [String: Any] { schema["items"] = nullableOptionals(items) }
        return schema
    }
}
