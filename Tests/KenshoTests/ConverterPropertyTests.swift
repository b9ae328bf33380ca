import Domains
import Foundation
import PropertyBased
import Testing

@testable import KenshoKit

/// Issue 11 §2: the converters read whatever a CI left behind. Any document gives a conversion
/// error naming the file, or a run whose numbers are within kensho/v1's bounds — never a trap.
@Suite struct ConverterPropertyTests {
    static func checkConverted(_ run: ConvertedRun) {
        let bound = KenshoValidator().limits.maxDurationMs
        for item in run.run.cases ?? [] {
            if let d = item.durationMs { #expect(d.isFinite && d >= 0 && d <= bound) }
            for retry in item.retries ?? [] { if let d = retry.durationMs { #expect(d.isFinite && d >= 0 && d <= bound) } }
        }
        var document = run.run
        document.project = .init(slug: "web")
        document.externalRunId = "x"
        document.branch = "main"
        // Valid or reported with pointers: both are answers, a trap is not.
        switch KenshoValidator().validate(document, knownAttachments: Set(run.attachments.keys)) {
        case .valid: break
        case .invalid(let problems, _): #expect(!problems.isEmpty)
        }
    }

    @Test func arbitraryJUnitNeverTraps() async {
        await propertyCheck(count: 600, input: JUnitDocuments.generator) { xml in
            do {
                Self.checkConverted(try JUnitConverter.convert(documents: [("report.xml", Data(xml.utf8))]))
            } catch let error as ConversionError {
                #expect(error.file == "report.xml")
            } catch {
                Issue.record("unexpected \(type(of: error)): \(error)")
            }
        }
    }

    @Test func arbitraryAllureNeverTraps() async {
        await propertyCheck(count: 600, input: AllureDocuments.generator) { json in
            do {
                let run = try AllureConverter.convert(results: [("x-result.json", Data(json.utf8))]) { _ in Data("log".utf8) }
                Self.checkConverted(run)
            } catch let error as ConversionError {
                #expect(error.file == "x-result.json")
            } catch {
                Issue.record("unexpected \(type(of: error)): \(error)")
            }
        }
    }

    /// What `ops/fuzz.sh` found: FoundationXML traps on element names that are not UTF-8. Refused
    /// with the file and line before the parser sees them.
    @Test func invalidUTF8AndNULAreConversionErrorsNotTraps() throws {
        var bytes = Array("<testsuites><tes".utf8) + [0xC0] + Array("suite name=\"s\"><testcase name=\"t\"/></testsuite></testsuites>".utf8)
        #expect(throws: ConversionError.self) { try JUnitConverter.convert(documents: [("bad.xml", Data(bytes))]) }
        bytes = Array("<testsuite name=\"s\">\n<testcase name=\"t\u{0}\"/></testsuite>".utf8)
        do {
            _ = try JUnitConverter.convert(documents: [("nul.xml", Data(bytes))])
            Issue.record("a NUL was accepted")
        } catch let error as ConversionError {
            #expect(error.file == "nul.xml" && error.line == 2)
        }
        let utf16 = Data([0xFF, 0xFE]) + "<testsuite name=\"s\"><testcase name=\"é\"/></testsuite>".data(using: .utf16LittleEndian)!
        #expect(try JUnitConverter.convert(documents: [("u16.xml", utf16)]).run.cases?.first?.name == "é")
    }

    @Test func pytestRerunRecordsAreOneFlakyCase() throws {
        // pytest-rerunfailures 16.6.1 writes a record per attempt; the earlier ones say nothing.
        let xml = """
            <testsuites><testsuite name="pytest" timestamp="2026-04-30T12:00:14.250000" time="2.5">
              <testcase classname="tests.test_math" name="test_flaky" time="0.1"/>
              <testcase classname="tests.test_math" name="test_flaky" time="0.1"/>
              <testcase classname="tests.test_math" name="test_flaky" time="0.2"/>
              <testcase classname="tests.test_math" name="test_broken" time="0.1"><failure message="boom">trace</failure></testcase>
              <testcase classname="tests.test_math" name="test_broken" time="0.1"><failure message="boom">trace</failure></testcase>
            </testsuite></testsuites>
            """
        let run = try JUnitConverter.convert(documents: [("r.xml", Data(xml.utf8))])
        let cases = run.run.cases ?? []
        #expect(cases.count == 2)
        let flaky = try #require(cases.first { $0.name == "test_flaky" })
        #expect(flaky.status == "passed" && flaky.key == nil)
        #expect(flaky.retries?.map(\.status) == ["failed", "failed"])
        let broken = try #require(cases.first { $0.name == "test_broken" })
        #expect(broken.status == "failed" && broken.retries?.count == 1)
        #expect(run.run.totals?.flaky == 1 && run.run.totals?.passed == 1 && run.run.totals?.failed == 1)
        // The suite's timestamp (pytest writes local time without a zone) gives the run's times.
        let started = try #require(run.run.startedAt.flatMap { try? Date($0, strategy: .iso8601) })
        let finished = try #require(run.run.finishedAt.flatMap { try? Date($0, strategy: .iso8601) })
        #expect(abs(finished.timeIntervalSince(started) - 2.5) < 0.01)
    }

    @Test func theSameTestHasTheSameKeyFromJUnitAndAllure() throws {
        let xml = """
            <testsuite name="pytest"><testcase classname="tests.test_math" name="test_square_even[5]" time="0.01">
            <failure message="assert 25 % 2 == 0">trace</failure></testcase></testsuite>
            """
        let junit = try JUnitConverter.convert(documents: [("r.xml", Data(xml.utf8))])
        let allureJSON = #"""
            {"name":"test_square_even[5]","fullName":"tests.test_math#test_square_even","historyId":"04e108bc","status":"failed",
             "start":1000,"stop":1010,"parameters":[{"name":"n","value":"5"}],
             "labels":[{"name":"suite","value":"test_math"},{"name":"parentSuite","value":"tests"},{"name":"package","value":"tests.test_math"}]}
            """#
        let allure = try AllureConverter.convert(results: [("a-result.json", Data(allureJSON.utf8))]) { _ in nil }
        func key(_ run: ConvertedRun) -> String? {
            guard let c = run.run.cases?.first else { return nil }
            return c.key ?? KenshoValidator.derivedKey(suite: c.suite, name: c.name ?? "", parameters: c.parameters ?? [:])
        }
        #expect(key(junit) == "tests.test_math::test_square_even[5]")
        #expect(key(allure) == key(junit))
        // Java: the class in testClass, the method after it in fullName, as Surefire writes them.
        let java = #"""
            {"name":"Login works","fullName":"com.acme.LoginTest.loginWorks","historyId":"ff","status":"passed",
             "labels":[{"name":"testClass","value":"com.acme.LoginTest"},{"name":"suite","value":"com.acme.LoginTest"}]}
            """#
        let converted = try AllureConverter.convert(results: [("b-result.json", Data(java.utf8))]) { _ in nil }
        #expect(key(converted) == "com.acme.LoginTest::loginWorks")
    }
}

enum JUnitDocuments {
    static let times = ["0.5", "1e999", "-3", "NaN", "1,234.5", "", "9e18", "abc", "0"]
    static let texts = ["plain", "<![CDATA[x]]>", "&amp;", "a\u{0001}b", "é", String(repeating: "y", count: 2500)]
    static let stamps = ["2026-04-30T12:00:14", "2026-04-30T12:00:14Z", "garbage", "99999-99-99", ""]

    static func attribute(_ name: String, _ values: [String], _ rng: inout any SeededRandomNumberGenerator) -> String {
        Bool.random(using: &rng) ? " \(name)=\"\(values.randomElement(using: &rng)!)\"" : ""
    }

    static func testcase(_ rng: inout any SeededRandomNumberGenerator) -> String {
        let name = ["a", "b", "a", "t[1]", ""].randomElement(using: &rng)!
        var xml = "<testcase classname=\"S\" name=\"\(name)\"" + attribute("time", times, &rng) + ">"
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            let child = ["failure", "error", "skipped", "flakyFailure", "rerunFailure", "rerunError", "system-out", "properties"]
                .randomElement(using: &rng)!
            if child == "properties" {
                xml += "<properties><property name=\"k\" value=\"v\"/></properties>"
            } else {
                xml += "<\(child)" + attribute("message", texts.filter { !$0.contains("<") }, &rng) + ">"
                    + texts.randomElement(using: &rng)! + "</\(child)>"
            }
        }
        return xml + "</testcase>"
    }

    static func suite(_ rng: inout any SeededRandomNumberGenerator, depth: Int) -> String {
        var xml = "<testsuite name=\"s\"" + attribute("timestamp", stamps, &rng) + attribute("time", times, &rng) + ">"
        for _ in 0..<Int.random(in: 0...4, using: &rng) { xml += testcase(&rng) }
        if depth < 2 && Bool.random(using: &rng) { xml += suite(&rng, depth: depth + 1) }
        return xml + "</testsuite>"
    }

    static let generator = Generator<String, Shrink.None<String>>(run: { rng in
        var xml = "<testsuites>" + suite(&rng, depth: 0) + "</testsuites>"
        if Int.random(in: 0..<5, using: &rng) == 0 {
            var bytes = Array(xml.utf8)
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            bytes.removeSubrange(at...)
            xml = String(decoding: bytes, as: UTF8.self)
        }
        return xml
    })
}

enum AllureDocuments {
    static let numbers = ["0", "1000", "1e999", "-5", "1e300", "null", "\"x\""]

    static let generator = Generator<String, Shrink.None<String>>(run: { rng in
        func pick(_ list: [String]) -> String { list.randomElement(using: &rng)! }
        let step = #"{"name":"s","status":"\#(pick(["passed", "failed", "x"]))","start":\#(pick(numbers)),"stop":\#(pick(numbers)),"attachments":[{"source":"\#(pick(["a.txt", "..", "x y"]))"}]}"#
        let fields = [
            #""name":\#(pick(["\"t\"", "null", "1", "\"a\\u0000\""]))"#,
            #""fullName":\#(pick(["\"m#t\"", "\"#\"", "\"c.M.t\"", "null"]))"#,
            #""historyId":\#(pick(["\"h1\"", "null"]))"#,
            #""status":\#(pick(["\"passed\"", "\"failed\"", "\"unknown\"", "7"]))"#,
            #""start":\#(pick(numbers))"#, #""stop":\#(pick(numbers))"#,
            #""statusDetails":{"message":"\#(pick(["m", "a:b", ""]))","trace":"t"}"#,
            #""steps":[\#(step)]"#,
            #""labels":[{"name":"\#(pick(["testClass", "suite", "package"]))","value":"\#(pick(["c.M", "s"]))"}]"#,
            #""parameters":[{"name":"p","value":"1"}]"#,
        ]
        let chosen = fields.filter { _ in Int.random(in: 0..<4, using: &rng) != 0 }
        return "{" + chosen.joined(separator: ",") + "}"
    })
}

@Suite struct FailureMessageTests {
    /// A 422 names each problem once: the list, not the message that repeats its first line.
    @Test func aValidationFailureListsEachProblemOnce() {
        let body = #"{"error":{"code":"validation_failed","message":"/branch: is required (and 1 more)","details":{"errors":[{"pointer":"/branch","message":"is required"},{"pointer":"/totals","message":"is required"}]}}}"#
        let text = EnvelopeMiddleware.failure(status: 422, body: Data(body.utf8)).description
        #expect(text.components(separatedBy: "/branch").count == 2, "\(text)")
        #expect(text.contains("/totals: is required"))
        let plain = EnvelopeMiddleware.failure(status: 404, body: Data(#"{"error":{"code":"not_found","message":"project 'x' not found","details":null}}"#.utf8))
        #expect(plain.description == "Kaizen answered 404 not_found: project 'x' not found")
    }
}
