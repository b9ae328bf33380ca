import Foundation
import Yams

/// The OpenAPI document, read once from the bundled `openapi.yaml` (the file the server stubs are
/// generated from) and served as JSON at `/v1/openapi.json`.
public struct OpenAPIDocument: Sendable {
    public let json: Data

    /// - Parameter publicURL: replaces the document's `servers` so generated SDKs point at this deployment.
    public init(publicURL: String?) throws {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw CocoaError(.fileNoSuchFile)
        }
        let yaml = try String(contentsOf: url, encoding: .utf8)
        guard var object = try Yams.load(yaml: yaml) as? [String: Any] else { throw CocoaError(.fileReadCorruptFile) }
        if let publicURL {
            object["servers"] = [["url": publicURL, "description": "This Kaizen server"]]
        }
        self.json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }
}
