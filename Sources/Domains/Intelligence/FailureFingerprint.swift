import Crypto
import Foundation

/// Groups failures that are the same problem: the error type, the message and the top of the trace
/// with what varies between occurrences masked — UUIDs, hex ids and addresses, IP addresses and
/// ports, file paths, and numbers — so "timeout after 3012 ms on 10.0.0.7:5432" and "timeout after
/// 2990 ms on 10.0.0.9:5432" fall in one cluster.
public enum FailureFingerprint {
    /// The message with its varying parts masked.
    public static func normalize(_ text: String) -> String {
        // The masking rules are the regular expressions below. For ASCII text (nearly every message) a
        // byte scanner applies them with the same matches — 7 `NSRegularExpression` passes per line
        // were a tenth of a loaded server's CPU — and other text still goes through the expressions,
        // whose Unicode word and digit classes the scanner does not model.
        var utf8 = Array(text.utf8)
        let masked: String
        if utf8.allSatisfy({ $0 < 0x80 }) {
            for rule in ASCIIMask.Rule.allCases { utf8 = ASCIIMask.apply(rule, to: utf8) }
            masked = String(decoding: utf8, as: UTF8.self)
        } else {
            masked = maskWithExpressions(text)
        }
        return collapseWhitespace(masked)
    }

    /// The reference masking: every rule as a regular expression, in order.
    static func maskWithExpressions(_ text: String) -> String {
        var s = text
        for (pattern, replacement) in rules {
            s = pattern.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: replacement)
        }
        return s
    }

    /// Collapse runs of whitespace so reflowed messages still match.
    static func collapseWhitespace(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }

    /// A 16-hex-digit id of (type, masked message, masked top 3 trace lines).
    public static func of(type: String?, message: String?, trace: String?) -> String {
        // Only what counts is looked at: the message's first non-empty line and the trace's first three
        // non-blank lines, found by scanning, not by splitting a whole dump into lines.
        var top: [String] = []
        var rest = Substring(trace ?? "")
        while top.count < 3, !rest.isEmpty {
            let end = rest.firstIndex(of: "\n") ?? rest.endIndex
            let line = trimmingWhitespace(rest[..<end])
            if !line.isEmpty { top.append(normalize(line)) }
            rest = end == rest.endIndex ? "" : rest[rest.index(after: end)...]
        }
        let text = Substring(message ?? "")
        let lineStart = text.firstIndex { $0 != "\n" } ?? text.endIndex
        let firstLine = String(text[lineStart..<(text[lineStart...].firstIndex(of: "\n") ?? text.endIndex)])
        let key = [type ?? "", normalize(firstLine), top.joined(separator: "\n")].joined(separator: "\u{1F}")
        return Hex.string(SHA256.hash(data: Array(key.utf8)).prefix(8))
    }

    /// `trimmingCharacters(in: .whitespaces)` without the bridge to `NSString`: the same scalars
    /// (tab and the space separators, as Foundation defines them) off both ends.
    static func trimmingWhitespace(_ line: Substring) -> String {
        let scalars = line.unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, isWhitespace(scalars[start]) { start = scalars.index(after: start) }
        while end > start, isWhitespace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }

    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    // Order matters: the specific shapes first, then what is left of digits. `ASCIIMask` mirrors each.
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

/// The masking rules over ASCII bytes. Each rule finds its leftmost match, replaces it and goes on after
/// it, as a regular-expression replace-all does; `\b` looks at the pass's input on both sides, and on
/// ASCII a word byte is `[A-Za-z0-9_]`. Where an expression could backtrack, the comments say why the
/// first candidate is the only one that can match.
enum ASCIIMask {
    enum Rule: CaseIterable {
        case uuid, address, ip, path, hex, id, number

        var replacement: [UInt8] {
            switch self {
            case .uuid: Array("<uuid>".utf8)
            case .address: Array("<addr>".utf8)
            case .ip: Array("<ip>".utf8)
            case .path: Array("<path>".utf8)
            case .hex: Array("<hex>".utf8)
            case .id: Array("<id>".utf8)
            case .number: Array("<n>".utf8)
            }
        }
    }

    static func apply(_ rule: Rule, to s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        let replacement = rule.replacement
        var i = 0
        while i < s.count {
            if let end = match(rule, s, at: i) {
                out += replacement
                i = end
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    /// The end of `rule`'s match starting at `i`, if there is one.
    static func match(_ rule: Rule, _ s: [UInt8], at i: Int) -> Int? {
        switch rule {
        case .uuid:
            // [hex]{8}-[hex]{4}-[hex]{4}-[hex]{4}-[hex]{12}: fixed shape, nothing to backtrack.
            var p = i
            for (n, group) in [8, 4, 4, 4, 12].enumerated() {
                if n > 0 {
                    guard p < s.count, s[p] == UInt8(ascii: "-") else { return nil }
                    p += 1
                }
                guard run(s, from: p, isHex) >= group else { return nil }
                p += group
            }
            return p
        case .address:
            // \b0x[hex]+\b — inside a run of hex digits there is no word boundary, so only the whole run can end it.
            guard boundary(s, i), i + 2 < s.count, s[i] == UInt8(ascii: "0"), s[i + 1] == UInt8(ascii: "x") else { return nil }
            let digits = run(s, from: i + 2, isHex)
            guard digits > 0, boundary(s, i + 2 + digits) else { return nil }
            return i + 2 + digits
        case .ip:
            // \b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b — a shorter digit group is followed by a digit, never by
            // the '.', ':' or boundary the pattern needs next, so each group is a whole digit run.
            guard boundary(s, i) else { return nil }
            var p = i
            for _ in 0..<3 {
                let digits = run(s, from: p, isDigit)
                guard (1...3).contains(digits), p + digits < s.count, s[p + digits] == UInt8(ascii: ".") else { return nil }
                p += digits + 1
            }
            let last = run(s, from: p, isDigit)
            guard (1...3).contains(last) else { return nil }
            p += last
            if p < s.count, s[p] == UInt8(ascii: ":") {
                let port = run(s, from: p + 1, isDigit)
                if port > 0, boundary(s, p + 1 + port) { return p + 1 + port }
            }
            return boundary(s, p) ? p : nil
        case .path:
            // (?:[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]? — segment characters exclude the separators, so
            // each segment is a whole run; the drive letter is tried first, as the greedy `?` does.
            if i + 1 < s.count, isLetter(s[i]), s[i + 1] == UInt8(ascii: ":"), let end = segments(s, from: i + 2) { return end }
            return segments(s, from: i)
        case .hex:
            // \b(?=[hex]*\d)(?=[hex]*[a-fA-F])[hex]{8,}\b — the whole hex run (no boundary inside it), with
            // a digit and a letter somewhere in it.
            guard boundary(s, i) else { return nil }
            let length = run(s, from: i, isHex)
            guard length >= 8, boundary(s, i + length) else { return nil }
            let digits = s[i..<(i + length)]
            guard digits.contains(where: isDigit), digits.contains(where: { !isDigit($0) }) else { return nil }
            return i + length
        case .id:
            // \b[a-z]{2,5}_[0-9a-z]{20,}\b — fewer letters leave a letter, not '_', next; a shorter tail
            // ends between two word bytes, never at a boundary.
            guard boundary(s, i) else { return nil }
            let letters = run(s, from: i, isLower)
            guard (2...5).contains(letters), i + letters < s.count, s[i + letters] == UInt8(ascii: "_") else { return nil }
            let tail = run(s, from: i + letters + 1, { isLower($0) || isDigit($0) })
            let end = i + letters + 1 + tail
            guard tail >= 20, boundary(s, end) else { return nil }
            return end
        case .number:
            // \d+(?:\.\d+)? — greedy, and nothing after it to backtrack for.
            let whole = run(s, from: i, isDigit)
            guard whole > 0 else { return nil }
            let p = i + whole
            if p < s.count, s[p] == UInt8(ascii: ".") {
                let fraction = run(s, from: p + 1, isDigit)
                if fraction > 0 { return p + 1 + fraction }
            }
            return p
        }
    }

    /// `(?:[/\\][\w.@+-]+){2,}[/\\]?` from `p`.
    static func segments(_ s: [UInt8], from start: Int) -> Int? {
        var p = start
        var count = 0
        while p < s.count, isSeparator(s[p]) {
            let length = run(s, from: p + 1, isSegment)
            guard length > 0 else { break }
            p += 1 + length
            count += 1
        }
        guard count >= 2 else { return nil }
        return p < s.count && isSeparator(s[p]) ? p + 1 : p
    }

    static func run(_ s: [UInt8], from start: Int, _ predicate: (UInt8) -> Bool) -> Int {
        var p = start
        while p < s.count, predicate(s[p]) { p += 1 }
        return p - start
    }

    /// `\b`: a word byte on exactly one side of `p`.
    static func boundary(_ s: [UInt8], _ p: Int) -> Bool {
        let before = p > 0 && isWord(s[p - 1])
        let after = p < s.count && isWord(s[p])
        return before != after
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
    static func isLetter(_ c: UInt8) -> Bool { isLower(c) || (c >= 0x41 && c <= 0x5A) }
    static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46) }
    static func isWord(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) || c == UInt8(ascii: "_") }
    static func isSeparator(_ c: UInt8) -> Bool { c == UInt8(ascii: "/") || c == UInt8(ascii: "\\") }
    static func isSegment(_ c: UInt8) -> Bool {
        isWord(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "@") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
    }
}
