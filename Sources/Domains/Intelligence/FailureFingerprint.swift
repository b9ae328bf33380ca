import Crypto
import Foundation

/// Groups failures that are the same problem: the error type, the message and the top of the trace
/// with what varies between occurrences masked — UUIDs, hex ids and addresses, IP addresses and
/// ports, file paths, and numbers — so "timeout after 3012 ms on 10.0.0.7:5432" and "timeout after
/// 2990 ms on 10.0.0.9:5432" fall in one cluster.
public enum FailureFingerprint {
    /// The message with its varying parts masked.
    public static func normalize(_ text: String) -> String {
        var s = text
        for (pattern, replacement) in rules {
            s = pattern.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: replacement)
        }
        // Collapse runs of whitespace so reflowed messages still match.
        return s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }

    /// A 16-hex-digit id of (type, masked message, masked top 3 trace lines).
    public static func of(type: String?, message: String?, trace: String?) -> String {
        let top = (trace ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.prefix(3).map { normalize($0) }
        let firstLine = (message ?? "").split(separator: "\n").first.map(String.init) ?? ""
        let key = [type ?? "", normalize(firstLine), top.joined(separator: "\n")].joined(separator: "\u{1F}")
        return SHA256.hash(data: Array(key.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    // Order matters: the specific shapes first, then what is left of digits.
    static let rules: [(NSRegularExpression, String)] = [
        (#"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"#, "<uuid>"),
        (#"\b0x[0-9a-fA-F]+\b"#, "<addr>"),
        (#"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"#, "<ip>"),
        (#"(?:[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]?"#, "<path>"),
        (#"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"#, "<hex>"),
        (#"\b[a-z]{2,5}_[0-9a-z]{20,}\b"#, "<id>"),
        (#"\d+(?:\.\d+)?"#, "<n>"),
    ].map { (try! NSRegularExpression(pattern: $0.0), $0.1) }
}
