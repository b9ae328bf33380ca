import Crypto
import Foundation
import PropertyBased
import Testing

@testable import Domains

@Suite struct FailureFingerprintTests {
    @Test func masksWhatVariesBetweenOccurrences() {
        #expect(FailureFingerprint.normalize("timeout after 3012 ms on 10.0.0.7:5432") == "timeout after <n> ms on <ip>")
        #expect(FailureFingerprint.normalize("order 6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab not found") == "order <uuid> not found")
        #expect(FailureFingerprint.normalize("object at 0x7f9aaa190350 freed") == "object at <addr> freed")
        #expect(FailureFingerprint.normalize("cannot open /var/lib/app/cache/42.db") == "cannot open <path>")
        #expect(FailureFingerprint.normalize("commit deadbeef01 mismatch") == "commit <hex> mismatch")
        #expect(FailureFingerprint.normalize("run run_01m82frg0avkhgmcx1prntt7d0 failed") == "run <id> failed")
        #expect(FailureFingerprint.normalize("expected  1,\tgot 2") == "expected <n>, got <n>")
    }

    @Test func sameProblemSameFingerprintDifferentProblemDifferent() {
        let a = FailureFingerprint.of(type: "TimeoutError", message: "timeout after 3012 ms on 10.0.0.7:5432", trace: "at db.connect (db.js:10)\nat main")
        let b = FailureFingerprint.of(type: "TimeoutError", message: "timeout after 2990 ms on 10.0.0.9:5432", trace: "at db.connect (db.js:12)\nat main")
        let c = FailureFingerprint.of(type: "AssertionError", message: "timeout after 3012 ms on 10.0.0.7:5432", trace: nil)
        let d = FailureFingerprint.of(type: "TimeoutError", message: "connection refused on 10.0.0.7:5432", trace: "at db.connect (db.js:10)")
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
        #expect(a.count == 16)
        // Only the first line of the message counts: the rest is often a dump.
        #expect(FailureFingerprint.of(type: "E", message: "boom\nstate=1", trace: nil)
            == FailureFingerprint.of(type: "E", message: "boom\nstate=2 extra", trace: nil))
    }
}

/// The byte scanner masks ASCII exactly as the regular expressions do.
@Suite struct FailureMaskEquivalenceTests {
    /// Text made of the pieces the rules look for, glued in random orders so that every edge — a boundary
    /// or not, a run one short or one long, a separator doubled — comes up.
    static let fragments: [String] = [
        "0x", "0X", "7f9a", "deadbeef", "DEADBEEF01", "12345678", "abcdefab", "0123456789abcdef", "g", "G", "x",
        "6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab", "6f1c2d3e-aaaa-4bbb-8ccc-0123456789abcd", "-", "--",
        "10.0.0.7", "1.2.3", "255.255.255.255", "1234.5.6.7", ":", ":5432", ":x", "::", ".", "..",
        "/", "//", "\\", "C:", "c:", "var", "lib", "a.b", "@", "+", "_", "__", "run_", "prj_", "abcdef_",
        "01m82frg0avkhgmcx1prntt7d0", "0123456789abcdefghij", "abcdefghijklmnopqrst", "Z",
        "1", "42", "999", "1234", "3.14", "1.", ".5", " ", "  ", "\t", "\r", "<", ">", "(", ")", ",", "=", "'", "\"",
    ]

    static let texts = Generator<String, Shrink.None<String>>(run: { rng in
        (0..<Int.random(in: 0...14, using: &rng)).map { _ in fragments.randomElement(using: &rng)! }.joined()
    })

    @Test func theScannerAgreesWithTheExpressionsOnRandomText() async {
        await propertyCheck(count: 3_000, input: Self.texts) { text in
            #expect(FailureFingerprint.normalize(text) == FailureFingerprint.collapseWhitespace(FailureFingerprint.maskWithExpressions(text)), "\(text.debugDescription)")
        }
    }

    @Test func theScannerAgreesOnChosenEdges() {
        let edges = [
            "a0x1f", "0x1fg", "0x", "0xg", "x0x12", "1.2.3.4567", "1.2.3.4:80a", "1.2.3.4:", "a1.2.3.4", "1.2.3.4.5",
            "C:/a", "C:/a/b", "/a/b/", "/a//b", "\\\\srv\\share\\f", "abcdefgh1", "_deadbeef01", "deadbeef01_",
            "ab_01234567890123456789", "abcdef_01234567890123456789", "ab_0123456789012345678Z", "x-deadbeef-01",
            "", "   ", "1.5.", "v1.2.3.4b", "0x1.2.3.4", "6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab-x",
        ]
        for text in edges {
            #expect(FailureFingerprint.normalize(text) == FailureFingerprint.collapseWhitespace(FailureFingerprint.maskWithExpressions(text)), "\(text.debugDescription)")
        }
    }

    @Test func textBeyondASCIIStillGoesThroughTheExpressions() {
        // Unicode digits are \d to the expressions: "٣" (Arabic-Indic three) is masked like "3".
        #expect(FailureFingerprint.normalize("took ٣ ms → 12 ms") == "took <n> ms → <n> ms")
    }
}

/// The fingerprint's line handling equals the Foundation-based code it replaced.
@Suite struct FingerprintLinesTests {
    /// The replaced implementation, verbatim: split whole texts into lines, trim with Foundation.
    static func reference(type: String?, message: String?, trace: String?) -> String {
        let top = (trace ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.prefix(3).map { FailureFingerprint.normalize($0) }
        let firstLine = (message ?? "").split(separator: "\n").first.map(String.init) ?? ""
        let key = [type ?? "", FailureFingerprint.normalize(firstLine), top.joined(separator: "\n")].joined(separator: "\u{1F}")
        return Hex.string(SHA256.hash(data: Array(key.utf8)).prefix(8))
    }

    static let pieces: [String] = [
        "\n", "\n\n", "\r\n", "\r", " ", "\t", "\u{A0}", "\u{2003}", "\u{200B}", "\u{3000}", "\u{85}", "\u{FEFF}", "\u{180E}",
        "\u{301}", "at main (a.js:10)", "Error: boom", "x", "42", "é", "0xdeadbeef",
    ]
    static let texts = Generator<String?, Shrink.None<String?>>(run: { rng in
        Int.random(in: 0..<6, using: &rng) == 0
            ? nil : (0..<Int.random(in: 0...10, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    })

    @Test func linesAndTrimmingAsBefore() async {
        await propertyCheck(count: 2_000, input: Self.texts, Self.texts) { message, trace in
            #expect(FailureFingerprint.of(type: "E", message: message, trace: trace) == Self.reference(type: "E", message: message, trace: trace),
                    "\(message.debugDescription) / \(trace.debugDescription)")
        }
    }

    @Test func everyWhitespaceScalarTrimsAsFoundationDoes() {
        for value in UInt32(0)...0x3100 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let line = "\(Character(scalar))a\(Character(scalar))"
            #expect(FailureFingerprint.trimmingWhitespace(Substring(line)) == line.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16))")
        }
    }
}
