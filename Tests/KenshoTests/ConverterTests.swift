import Domains
import Foundation
import Testing

@testable import KenshoKit

func fixture(_ path: String) -> String {
    Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(path).path
}

func byName(_ run: ConvertedRun) -> [String: KenshoCase] {
    Dictionary((run.run.cases ?? []).map { ($0.name ?? "", $0) }, uniquingKeysWith: { a, _ in a })
}

@Suite struct JUnitConverterTests {
    @Test func pytestXunit1() throws {
        let run = try JUnitConverter.convert(files: [fixture("junit/pytest-xunit1.xml")])
        let cases = byName(run)
        #expect(cases.count == 7)
        #expect(cases["test_add_item"]?.status == "passed")
        #expect(cases["test_add_item"]?.suite == "test_shop.TestCart")
        #expect(cases["test_add_item"]?.file == "test_shop.py")
        #expect(cases["test_total_is_wrong"]?.status == "failed")
        #expect(cases["test_total_is_wrong"]?.error?.message?.hasPrefix("AssertionError: expected total 43") == true)
        #expect(cases["test_total_is_wrong"]?.error?.trace?.contains("def test_total_is_wrong") == true)
        #expect(cases["test_pay"]?.status == "skipped")
        #expect(cases["test_pay"]?.error?.message?.contains("payment sandbox is down") == true)
        #expect(cases["test_quantity[1]"]?.suite == "test_shop")
        let totals = try #require(run.run.totals)
        #expect([totals.passed, totals.failed, totals.skipped, totals.broken] == [3, 3, 1, 0])
        // What the server will validate: the converted run is a valid kensho/v1 run.
        var document = run.run
        document.project = .init(slug: "web")
        document.externalRunId = "x"
        document.branch = "main"
        guard case .valid = KenshoValidator().validate(document, knownAttachments: Set(run.attachments.keys)) else {
            Issue.record("the converted run does not validate")
            return
        }
    }

    @Test func pytestXunit2AndSwiftTestingTogether() throws {
        let run = try JUnitConverter.convert(files: [fixture("junit/pytest-xunit2.xml"), fixture("junit/swift-testing.xml")])
        let cases = byName(run)
        #expect(cases.count == 11)
        #expect(cases["wrongTotal()"]?.status == "failed")
        #expect(cases["wrongTotal()"]?.suite == "ShopTests.CartTests")
        #expect(cases["wrongTotal()"]?.error?.message?.contains("expected 5") == true)
        #expect(cases["pays()"]?.status == "skipped")
        #expect(cases["sumsItems()"]?.durationMs.map { $0 > 0 && $0 < 10 } == true)
    }

    @Test func repeatedReportsKeepEveryCase() throws {
        let file = fixture("junit/swift-testing.xml")
        let run = try JUnitConverter.convert(files: [file, file])
        #expect(run.run.cases?.count == 8)
        #expect(Set((run.run.cases ?? []).map { $0.key ?? "\($0.suite ?? "")::\($0.name ?? "")" }).count == 8)
    }

    /// The Surefire rerun elements, properties and captured output (format rules, not a fixture).
    @Test func surefireRerunsPropertiesAndOutput() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuite name="com.shop.CartTest" tests="3">
              <properties><property name="java.version" value="21"/></properties>
              <testcase name="flaky" classname="com.shop.CartTest" time="0.5">
                <flakyFailure message="timeout" type="java.net.SocketTimeoutException">trace 1</flakyFailure>
                <system-out>hello</system-out>
              </testcase>
              <testcase name="broken" classname="com.shop.CartTest" time="0.1">
                <failure message="first" type="AssertionError">t1</failure>
                <rerunFailure message="second" type="AssertionError">t2</rerunFailure>
              </testcase>
              <testcase name="errs" classname="com.shop.CartTest" time="0.1">
                <properties><property name="owner" value="payments"/></properties>
                <error message="NPE" type="java.lang.NullPointerException"/>
              </testcase>
            </testsuite>
            """
        let path = NSTemporaryDirectory() + "surefire-\(UUID().uuidString).xml"
        try Data(xml.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try JUnitConverter.convert(files: [path])
        let cases = byName(run)
        #expect(cases["flaky"]?.status == "passed")
        #expect(cases["flaky"]?.retries?.map(\.status) == ["failed"])
        #expect(cases["flaky"]?.attachments?.count == 1)
        #expect(run.attachments.values.contains(Data("hello".utf8)))
        #expect(cases["broken"]?.status == "failed")
        #expect(cases["broken"]?.error?.message == "second")
        #expect(cases["broken"]?.retries?.map { $0.error?.message } == ["first"])
        #expect(cases["errs"]?.status == "broken")
        #expect(cases["errs"]?.labels?["owner"] == "payments")
        #expect(run.run.env?["java.version"] == "21")
        #expect(run.run.totals?.flaky == 1)
    }

    @Test func malformedXMLNamesTheFileAndLine() throws {
        let path = NSTemporaryDirectory() + "bad-\(UUID().uuidString).xml"
        try Data("<testsuite>\n<testcase name=\"a\">\n<failure>\n</testsuite>".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            try JUnitConverter.convert(files: [path])
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("\(path):") && text.contains("not well-formed XML")
        }
        #expect(throws: ConversionError.self) { try JUnitConverter.convert(files: ["/etc/hostname"]) }
    }
}

@Suite struct AllureConverterTests {
    @Test func allurePytestResultsWithReruns() throws {
        let run = try AllureConverter.convert(directory: fixture("allure/allure-pytest"))
        let cases = byName(run)
        #expect(cases.count == 7)
        #expect(cases["test_flaky_checkout"]?.status == "passed")
        #expect(cases["test_flaky_checkout"]?.retries?.map(\.status) == ["failed"])
        #expect(cases["test_total_is_wrong"]?.status == "failed")
        #expect(cases["test_total_is_wrong"]?.retries?.count == 1)
        #expect(cases["test_broken_fixture_error"]?.status == "broken")
        #expect(cases["test_broken_fixture_error"]?.error?.type == "RuntimeError")
        #expect(cases["test_pay"]?.status == "skipped")
        #expect(cases["test_add_item"]?.steps?.map(\.name) == ["open cart", "add item"])
        #expect(cases["test_add_item"]?.steps?.last?.attachments?.count == 1)
        #expect(cases["test_quantity[1]"]?.parameters?["qty"] == "1")
        #expect(cases["test_quantity[1]"]?.labels?["suite"] == "test_shop")
        #expect(run.attachments.count == 3)
        let totals = try #require(run.run.totals)
        #expect([totals.passed, totals.failed, totals.broken, totals.skipped, totals.flaky] == [4, 1, 1, 1, 1])
    }

    @Test func notAnAllureDirectory() {
        #expect(throws: ConversionError.self) { try AllureConverter.convert(directory: fixture("junit")) }
    }
}

@Suite struct CIEnvironmentTests {
    @Test func everyProvider() {
        let github = CIMetadata.detect([
            "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "test",
            "GITHUB_REF_NAME": "main", "GITHUB_SHA": "abc", "GITHUB_REPOSITORY": "acme/shop",
        ])
        #expect(github == CIMetadata(
            provider: "github-actions", externalRunId: "gha-42-2-test", branch: "main", commit: "abc",
            buildURL: "https://github.com/acme/shop/actions/runs/42"))
        #expect(CIMetadata.detect(["GITHUB_ACTIONS": "true", "GITHUB_HEAD_REF": "feature", "GITHUB_REF_NAME": "7/merge"])?.branch == "feature")
        let gitlab = CIMetadata.detect(["GITLAB_CI": "true", "CI_JOB_ID": "9", "CI_COMMIT_REF_NAME": "dev", "CI_COMMIT_SHA": "s", "CI_JOB_URL": "u"])
        #expect(gitlab == CIMetadata(provider: "gitlab-ci", externalRunId: "gitlab-9", branch: "dev", commit: "s", buildURL: "u"))
        let jenkins = CIMetadata.detect(["JENKINS_URL": "j", "BUILD_TAG": "jenkins-shop-7", "GIT_BRANCH": "origin/main", "GIT_COMMIT": "c", "BUILD_URL": "b"])
        #expect(jenkins == CIMetadata(provider: "jenkins", externalRunId: "jenkins-jenkins-shop-7", branch: "main", commit: "c", buildURL: "b"))
        let circle = CIMetadata.detect(["CIRCLECI": "true", "CIRCLE_WORKFLOW_JOB_ID": "w", "CIRCLE_BRANCH": "b", "CIRCLE_SHA1": "c", "CIRCLE_BUILD_URL": "u"])
        #expect(circle?.externalRunId == "circle-w")
        let buildkite = CIMetadata.detect(["BUILDKITE": "true", "BUILDKITE_JOB_ID": "j", "BUILDKITE_BRANCH": "b", "BUILDKITE_COMMIT": "c", "BUILDKITE_BUILD_URL": "u"])
        #expect(buildkite?.externalRunId == "buildkite-j")
        let azure = CIMetadata.detect([
            "TF_BUILD": "True", "BUILD_BUILDID": "5", "SYSTEM_JOBID": "j", "BUILD_SOURCEBRANCH": "refs/heads/main",
            "BUILD_SOURCEVERSION": "c", "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/", "SYSTEM_TEAMPROJECT": "shop",
        ])
        #expect(azure == CIMetadata(
            provider: "azure-pipelines", externalRunId: "azure-5-j", branch: "main", commit: "c",
            buildURL: "https://dev.azure.com/acme/shop/_build/results?buildId=5"))
        #expect(CIMetadata.detect(["HOME": "/root"]) == nil)
    }

    @Test func retryDelaysHonourRetryAfterAndGrow() {
        let policy = RetryPolicy(attempts: 6, baseDelay: 0.5, maxDelay: 30)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 7) == 7)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 100) == 30)
        for attempt in 1...5 {
            let ceiling = min(30, 0.5 * pow(2, Double(attempt - 1)))
            let delay = policy.delay(afterAttempt: attempt, retryAfter: nil)
            #expect(delay >= ceiling / 2 && delay <= ceiling)
        }
    }
}

@Suite struct GlobTests {
    @Test func starsAndDoubleStars() throws {
        let root = NSTemporaryDirectory() + "glob-\(UUID().uuidString)"
        for path in ["a/x.xml", "a/b/y.xml", "a/b/c/z.xml", "a/note.txt"] {
            let full = "\(root)/\(path)"
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: full, contents: Data())
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(Glob.expand(["\(root)/a/*.xml"]) == ["\(root)/a/x.xml"])
        #expect(Glob.expand(["\(root)/a/**/*.xml"]) == ["\(root)/a/b/c/z.xml", "\(root)/a/b/y.xml", "\(root)/a/x.xml"])
        #expect(Glob.expand(["\(root)/a/b/?.xml"]) == ["\(root)/a/b/y.xml"])
        #expect(Glob.expand(["\(root)/a/note.txt"]) == ["\(root)/a/note.txt"])
        #expect(Glob.expand(["\(root)/none/*.xml"]).isEmpty)
    }
}
