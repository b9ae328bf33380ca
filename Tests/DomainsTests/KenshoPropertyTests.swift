import Foundation
import PropertyBased
import Testing

@testable import Domains

/// Issue 11 §2: whatever bytes arrive, the kensho decoder and validator answer with an error that
/// becomes an envelope (a `DecodingError`, mapped to 400/422) or a run — they never trap. A trap
/// would end this test process, which is the failure this suite exists to catch.
@Suite struct KenshoPropertyTests {
    static let validator = KenshoValidator()

    /// Decodes and validates; checks what a valid run promises.
    static func check(_ bytes: [UInt8]) {
        let run: KenshoRun
        do {
            run = try KenshoJSON.decode(bytes)
        } catch is DecodingError {
            return
        } catch {
            Issue.record("the decoder threw \(type(of: error)), which no handler maps: \(error)")
            return
        }
        switch validator.validate(run, knownAttachments: ["a1", "a2"]) {
        case .valid(let valid):
            for item in valid.cases {
                #expect(item.durationMs >= 0 && Double(item.durationMs) <= validator.limits.maxDurationMs)
                for step in item.steps { #expect(step.durationMs >= 0 && Double(step.durationMs) <= validator.limits.maxDurationMs) }
                #expect(!item.key.isEmpty)
            }
        case .invalid(let problems, _):
            #expect(!problems.isEmpty)
            #expect(problems.allSatisfy { $0.pointer.isEmpty || $0.pointer.hasPrefix("/") })
        }
    }

    @Test func arbitraryKenshoShapedDocumentsNeverTrap() async {
        await propertyCheck(count: 1500, input: KenshoDocuments.generator) { document in
            Self.check(Array(document.utf8))
        }
    }

    @Test func mutatedBytesNeverTrap() async {
        await propertyCheck(count: 1500, input: KenshoDocuments.mutatedBytes) { bytes in
            Self.check(bytes)
        }
    }

    /// Pointers into nested steps name every level (they are made only when a problem is reported).
    @Test func nestedStepProblemsPointAtTheirStep() throws {
        let json = """
            {"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"x","branch":"main",
             "totals":{"passed":1,"failed":0,"skipped":0,"broken":0},
             "cases":[{"name":"a","status":"passed",
                       "steps":[{"name":"ok","status":"passed"},
                                {"name":"outer","status":"passed","steps":[
                                    {"name":"inner","status":"passed"},
                                    {"status":"bogus","durationMs":-1,"attachments":["nope"]}]}]}]}
            """
        let run = try KenshoJSON.decode(Array(json.utf8))
        guard case .invalid(let problems, _) = Self.validator.validate(run, knownAttachments: []) else {
            Issue.record("accepted")
            return
        }
        #expect(
            Set(problems.map(\.pointer)) == [
                "/cases/0/steps/1/steps/1/name", "/cases/0/steps/1/steps/1/status", "/cases/0/steps/1/steps/1/durationMs",
                "/cases/0/steps/1/steps/1/attachments/0",
            ])
    }

    /// The numbers the issue found, each where it used to trap.
    @Test func hugeAndOddNumbersAreProblemsWithTheirPointers() throws {
        for number in ["1e19", "1e308", "9223372036854775808", "1e999", "-1", "-1e999", "2592000001"] {
            let json = """
                {"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"x","branch":"main",
                 "totals":{"passed":1,"failed":0,"skipped":0,"broken":0},
                 "cases":[{"name":"a","status":"passed","durationMs":\(number),
                           "steps":[{"name":"s","status":"passed","durationMs":\(number)}]}]}
                """
            let run = try KenshoJSON.decode(Array(json.utf8))
            guard case .invalid(let problems, _) = Self.validator.validate(run, knownAttachments: []) else {
                Issue.record("\(number) was accepted")
                continue
            }
            #expect(Set(problems.map(\.pointer)) == ["/cases/0/durationMs", "/cases/0/steps/0/durationMs"], "\(number)")
        }
    }

    @Test func aNULInFreeTextBecomesAReplacementCharacter() throws {
        let json = #"{"cases":[{"name":"a","status":"failed","error":{"message":"bad\u0000byte"}}]}"#
        let run = try KenshoJSON.decode(Array(json.utf8))
        #expect(run.cases?.first?.error?.message == "bad\u{FFFD}byte")
    }
}

/// Generators of kensho-shaped JSON text: the right keys with hostile values.
enum KenshoDocuments {
    static let numbers = [
        "0", "1", "-0", "0.5", "12.75", "-1", "-1e999", "1e999", "1e19", "1e308", "-1e308", "1e-400", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "18446744073709551616", "2592000000", "2592000001", "4.9e-324",
        "123456789012345678901234567890",
    ]
    static let strings = [
        #""""#, #""a""#, #""passed""#, #""failed""#, #""skipped""#, #""broken""#, #""kensho/v1""#, #""web""#, #""main""#,
        #""\u0000""#, #""a\u0000b""#, #""\ud83d\ude80""#, #""é""#, #""\t\n""#, #""2026-04-30T12:00:14Z""#, #""99999-01-01T00:00:00Z""#,
        #""a1""#, #""..""#, #""has space""#, "\"" + String(repeating: "x", count: 3000) + "\"",
    ]
    static let others = ["null", "true", "false", "[]", "{}", "[1,2]", #"{"a":1}"#]

    static func value(_ rng: inout any SeededRandomNumberGenerator, depth: Int) -> String {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<3: return numbers.randomElement(using: &rng)!
        case 3..<7: return strings.randomElement(using: &rng)!
        case 7: return depth < 4 ? "[" + (0..<Int.random(in: 0...3, using: &rng)).map { _ in value(&rng, depth: depth + 1) }.joined(separator: ",") + "]" : "[]"
        default: return others.randomElement(using: &rng)!
        }
    }

    /// A member with probability `p`, with a plausible or hostile value.
    static func member(_ key: String, _ plausible: String, _ rng: inout any SeededRandomNumberGenerator) -> String? {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return nil
        case 1..<6: return "\"\(key)\":\(plausible)"
        default: return "\"\(key)\":\(value(&rng, depth: 0))"
        }
    }

    static func object(_ members: [String?]) -> String { "{" + members.compactMap { $0 }.joined(separator: ",") + "}" }

    static func step(_ rng: inout any SeededRandomNumberGenerator, depth: Int) -> String {
        object([
            member("name", #""step""#, &rng), member("status", #""passed""#, &rng), member("durationMs", numbers.randomElement(using: &rng)!, &rng),
            member("attachments", #"["a1"]"#, &rng),
            depth < 3 && Bool.random(using: &rng) ? "\"steps\":[" + (0..<Int.random(in: 0...2, using: &rng)).map { _ in step(&rng, depth: depth + 1) }.joined(separator: ",") + "]" : nil,
        ])
    }

    static func testCase(_ rng: inout any SeededRandomNumberGenerator) -> String {
        object([
            member("name", #""case""#, &rng), member("suite", #""S""#, &rng), member("key", #""k""#, &rng),
            member("status", ["\"passed\"", "\"failed\"", "\"broken\"", "\"skipped\""].randomElement(using: &rng)!, &rng),
            member("durationMs", numbers.randomElement(using: &rng)!, &rng),
            member("retries", #"[{"status":"failed","durationMs":1e999}]"#, &rng),
            member("error", #"{"type":"E","message":"m\u0000","trace":"t"}"#, &rng),
            member("labels", #"{"a":"b"}"#, &rng), member("parameters", #"{"p":"1"}"#, &rng),
            member("attachments", #"["a1","a2"]"#, &rng),
            Bool.random(using: &rng) ? "\"steps\":[" + step(&rng, depth: 0) + "]" : nil,
        ])
    }

    static func document(_ rng: inout any SeededRandomNumberGenerator) -> String {
        let cases = (0..<Int.random(in: 0...4, using: &rng)).map { _ in testCase(&rng) }.joined(separator: ",")
        return object([
            member("schemaVersion", #""kensho/v1""#, &rng), member("project", #"{"slug":"web"}"#, &rng),
            member("externalRunId", #""r1""#, &rng), member("branch", #""main""#, &rng),
            member("commit", #""abc""#, &rng), member("startedAt", #""2026-04-30T12:00:14Z""#, &rng),
            member("finishedAt", #""2026-04-30T11:00:14Z""#, &rng), member("env", #"{"os":"linux"}"#, &rng),
            member("totals", #"{"passed":1,"failed":0,"skipped":0,"broken":0,"flaky":0}"#, &rng),
            member("cases", "[" + cases + "]", &rng),
        ])
    }

    static let generator = Generator<String, Shrink.None<String>>(run: { rng in document(&rng) })

    /// A document with a few random byte edits: truncation, flips, inserted brackets and quotes.
    static let mutatedBytes = Generator<[UInt8], Shrink.None<[UInt8]>>(run: { rng in
        var bytes = Array(document(&rng).utf8)
        for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes.removeSubrange(at...)
            case 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            case 2: bytes.insert(Array("{[\"\\,:}]0e".utf8).randomElement(using: &rng)!, at: at)
            default: bytes.remove(at: at)
            }
        }
        return bytes
    })
}
