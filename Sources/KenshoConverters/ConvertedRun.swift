import Domains
import Foundation

/// A run converted from another format, with the attachment bytes its cases refer to by id.
public struct ConvertedRun: Sendable {
    public var run: KenshoRun
    public var attachments: [String: Data]

    public init(cases: [KenshoCase], env: [String: String] = [:], attachments: [String: Data] = [:]) {
        var totals = RunTotals()
        for item in cases {
            let status = CaseStatus(rawValue: item.status ?? "") ?? .broken
            let flaky = status == .passed
                && (item.retries ?? []).contains { ["failed", "broken"].contains($0.status ?? "") }
            totals.count(status, flaky: flaky)
        }
        self.run = KenshoRun(
            project: nil, externalRunId: nil, branch: nil, env: env.isEmpty ? nil : env,
            totals: .init(
                passed: totals.passed, failed: totals.failed, skipped: totals.skipped, broken: totals.broken,
                flaky: totals.flaky),
            cases: cases)
        self.attachments = attachments
    }

    /// Writes `run.json` and `attachments/<id>` into `directory` (what `kensho push` reads).
    public func write(to directory: String) throws {
        let fm = FileManager.default
        let folder = (directory as NSString).appendingPathComponent("attachments")
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(run).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("run.json")))
        for (id, data) in attachments {
            try data.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(id)))
        }
    }
}

/// A conversion problem with the file (and line, for XML) it came from.
public struct ConversionError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let message: String

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// Expands `*`, `?` and `**` patterns against the filesystem; a plain path stands for itself.
public enum Glob {
    public static func expand(_ patterns: [String]) -> [String] {
        var out: [String] = []
        for pattern in patterns {
            guard pattern.contains("*") || pattern.contains("?") else {
                out.append(pattern)
                continue
            }
            let base = pattern.split(separator: "/", omittingEmptySubsequences: false)
                .prefix { !$0.contains("*") && !$0.contains("?") }.joined(separator: "/")
            let root = base.isEmpty ? "." : base
            // Foundation escapes "/" as well on some platforms; accept both spellings of "**/".
            let regex = "^" + NSRegularExpression.escapedPattern(for: pattern)
                .replacingOccurrences(of: "\\/", with: "/")
                .replacingOccurrences(of: "\\*\\*/", with: "(.*/)?")
                .replacingOccurrences(of: "\\*\\*", with: ".*")
                .replacingOccurrences(of: "\\*", with: "[^/]*")
                .replacingOccurrences(of: "\\?", with: "[^/]") + "$"
            guard let matcher = try? NSRegularExpression(pattern: regex),
                let walker = FileManager.default.enumerator(atPath: root)
            else { continue }
            var found: [String] = []
            for case let relative as String in walker {
                let path = base.isEmpty ? relative : "\(base)/\(relative)"
                if matcher.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil { found.append(path) }
            }
            out += found.sorted()
        }
        return out
    }
}
