import AsyncHTTPClient
import Foundation
import KaizenClient

/// A project's quarantined cases, as `kensho quarantine list` prints them for runners that skip them.
public struct QuarantinedCase: Sendable, Codable, Equatable {
    public var caseId: String
    public var key: String
    public var name: String
    public var suite: String?
    public var reason: String
    public var expiresAt: Date?
    public var automatic: Bool
}

public enum QuarantineList {
    /// Every page of the project's quarantine.
    public static func fetch(serverURL: URL, token: String, project: String, workspace: String?) async throws -> [QuarantinedCase] {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let items = try await fetch(serverURL: serverURL, token: token, project: project, workspace: workspace, http: http)
            try? await http.shutdown()
            return items
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func fetch(serverURL: URL, token: String, project: String, workspace: String?, http: HTTPClient) async throws
        -> [QuarantinedCase]
    {
        let client = KaizenClient.make(
            serverURL: serverURL, token: token, middlewares: [EnvelopeMiddleware(), RetryMiddleware(policy: RetryPolicy(attempts: 4), log: RetryLog())],
            httpClient: http, timeout: .seconds(60))
        var out: [QuarantinedCase] = []
        var cursor: String?
        repeat {
            let page = try await Push.unwrapped {
                try await client.listQuarantine(
                    path: .init(project: project), query: .init(workspace: workspace, cursor: cursor, limit: 200))
            }.ok.body.json
            out += page.items.map {
                QuarantinedCase(
                    caseId: $0.caseId, key: $0.key, name: $0.name, suite: $0.suite, reason: $0.reason, expiresAt: $0.expiresAt,
                    automatic: $0.automatic)
            }
            cursor = page.nextCursor.value as? String
        } while cursor != nil && out.count < 100_000
        return out
    }

    /// pytest's node id for a case converted from pytest's JUnit XML: the class name's module part
    /// (its components up to the last lower-case one) becomes a path, the rest classes.
    public static func pytestNodeID(_ item: QuarantinedCase) -> String {
        guard let suite = item.suite, !suite.isEmpty else { return item.name }
        let parts = suite.split(separator: ".").map(String.init)
        guard let module = parts.lastIndex(where: { $0.first?.isLowercase == true }) else {
            return ([suite] + [item.name]).joined(separator: "::")
        }
        let path = parts[...module].joined(separator: "/") + ".py"
        return ([path] + parts[(module + 1)...] + [item.name]).joined(separator: "::")
    }

    /// A JUnit XML file listing each quarantined case as skipped, with its reason.
    public static func junit(_ items: [QuarantinedCase]) -> String {
        func escape(_ text: String) -> String {
            var out = ""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                // XML 1.0 cannot carry most control characters at all.
                case _ where scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r": out += "?"
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuite name=\"kaizen-quarantine\" tests=\"\(items.count)\" skipped=\"\(items.count)\">\n"
        for item in items {
            xml += "  <testcase classname=\"\(escape(item.suite ?? ""))\" name=\"\(escape(item.name))\">"
            xml += "<skipped message=\"\(escape("quarantined: " + item.reason))\"/></testcase>\n"
        }
        return xml + "</testsuite>\n"
    }
}
