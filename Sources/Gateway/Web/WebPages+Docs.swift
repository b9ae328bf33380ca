import Domains
import Foundation

/// `/docs`: the API reference, rendered once from the served OpenAPI document — every operation with its
/// parameters, body, answers and a `curl` line to try it; every schema with its fields.
extension WebPages {
    static func docsView(_ document: Data) -> [String: Any] {
        guard let root = try? JSONSerialization.jsonObject(with: document) as? [String: Any] else { return [:] }
        let paths = root["paths"] as? [String: [String: Any]] ?? [:]
        let components = root["components"] as? [String: Any] ?? [:]
        let parameterRefs = components["parameters"] as? [String: [String: Any]] ?? [:]
        let schemas = components["schemas"] as? [String: [String: Any]] ?? [:]
        let declaredTags = (root["tags"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }

        func typeName(_ schema: [String: Any]?) -> String {
            guard let schema else { return "" }
            if let ref = schema["$ref"] as? String { return String(ref.split(separator: "/").last ?? "") }
            if let anyOf = schema["anyOf"] as? [[String: Any]] { return anyOf.map { typeName($0) }.joined(separator: " | ") }
            if let type = schema["type"] as? String {
                if type == "array" { return "[" + typeName(schema["items"] as? [String: Any]) + "]" }
                return type + ((schema["format"] as? String).map { " (\($0))" } ?? "")
            }
            if let types = schema["type"] as? [String] { return types.joined(separator: " | ") }
            return "any"
        }
        func resolve(_ parameter: [String: Any]) -> [String: Any] {
            guard let ref = parameter["$ref"] as? String, let name = ref.split(separator: "/").last else { return parameter }
            return parameterRefs[String(name)] ?? parameter
        }

        func skeletonJSON(_ schema: [String: Any]) -> String {
            var schema = schema
            if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last { schema = schemas[String(name)] ?? [:] }
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            var object: [String: Any] = [:]
            for name in schema["required"] as? [String] ?? [] {
                let field = properties[name] ?? [:]
                if let example = (field["examples"] as? [Any])?.first {
                    object[name] = example
                } else if let values = field["enum"] as? [Any], let first = values.first {
                    object[name] = first
                } else {
                    switch field["type"] as? String {
                    case "integer", "number": object[name] = 0
                    case "boolean": object[name] = false
                    case "array": object[name] = [Any]()
                    case "object": object[name] = [String: Any]()
                    default: object[name] = ""
                    }
                }
            }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return "{}" }
            return String(decoding: data, as: UTF8.self)
        }

        var byTag: [String: [[String: Any]]] = [:]
        for (path, item) in paths.sorted(by: { $0.key < $1.key }) {
            let shared = (item["parameters"] as? [[String: Any]] ?? []).map(resolve)
            for method in ["get", "post", "put", "patch", "delete"] {
                guard let operation = item[method] as? [String: Any] else { continue }
                let parameters = (shared + (operation["parameters"] as? [[String: Any]] ?? []).map(resolve)).map { p -> [String: Any] in
                    var schema = p["schema"] as? [String: Any] ?? [:]
                    if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last {
                        schema = schemas[String(name)].map { s in
                            var s = s
                            s["$ref"] = nil
                            return s.isEmpty ? schema : s
                        } ?? schema
                    }
                    let values = (schema["enum"] as? [Any])?.map { "\($0)" }.joined(separator: ", ")
                    let location = p["in"] as? String ?? ""
                    return [
                        "name": p["name"] as? String ?? "", "in": location, "required": p["required"] as? Bool ?? false,
                        "tryable": location == "path" || location == "query",
                        "type": values.map { "enum: " + $0 } ?? typeName(schema), "description": p["description"] as? String ?? "",
                    ]
                }
                let body = ((operation["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"]
                    .flatMap { (($0 as? [String: Any])?["schema"] as? [String: Any]).map { typeName($0) } }
                // The body's required fields with an example or an empty value of their type, to edit before sending.
                let bodySchema = ((operation["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"]
                    .flatMap { ($0 as? [String: Any])?["schema"] as? [String: Any] }
                let skeleton = bodySchema.map { skeletonJSON($0) } ?? ""
                let responses = (operation["responses"] as? [String: Any] ?? [:]).keys.sorted().map { code -> [String: Any] in
                    let response = (operation["responses"] as? [String: Any])?[code] as? [String: Any] ?? [:]
                    return ["code": code, "description": response["description"] as? String ?? (response["$ref"] as? String ?? "")]
                }
                let isPublic = (operation["security"] as? [Any])?.isEmpty == true
                var curl = "curl -X \(method.uppercased()) \"$K\(path)\""
                if !isPublic { curl += " -H \"Authorization: Bearer $TOKEN\"" }
                if body != nil { curl += " -H 'content-type: application/json' -d '{…}'" }
                let tag = (operation["tags"] as? [String])?.first ?? "other"
                var view: [String: Any] = [
                    "operationId": operation["operationId"] as? String ?? "", "method": method, "methodUpper": method.uppercased(),
                    "path": path, "summary": operation["summary"] as? String ?? "", "description": operation["description"] as? String ?? "",
                    "parameters": parameters, "hasParameters": !parameters.isEmpty, "responses": responses,
                    "curl": curl, "public": isPublic, "bodySkeleton": skeleton,
                ]
                // Only operations that take a body name one (an absent value must not render as "nil").
                if let body { view["body"] = body }
                byTag[tag, default: []].append(view)
            }
        }
        let order = declaredTags + byTag.keys.filter { !declaredTags.contains($0) }.sorted()
        let tags = order.compactMap { name in byTag[name].map { ["name": name, "operations": $0] as [String: Any] } }
        let schemaViews = schemas.keys.sorted().map { name -> [String: Any] in
            let schema = schemas[name] ?? [:]
            let required = Set(schema["required"] as? [String] ?? [])
            let properties = (schema["properties"] as? [String: [String: Any]] ?? [:]).sorted { $0.key < $1.key }.map { field -> [String: Any] in
                ["name": field.key, "required": required.contains(field.key), "type": typeName(field.value),
                 "description": field.value["description"] as? String ?? ""]
            }
            return [
                "name": name, "summary": schema["description"] as? String ?? "", "properties": properties, "hasProperties": !properties.isEmpty,
            ].merging((schema["enum"] as? [Any]).map { ["enumText": $0.map { "\($0)" }.joined(separator: ", ")] } ?? [:]) { $1 }
        }
        let info = root["info"] as? [String: Any] ?? [:]
        return [
            "title": "API reference", "description": info["summary"] as? String ?? "", "tags": tags, "schemas": schemaViews,
        ]
    }
}
