import Foundation
import KaizenServer
import KaizenTestSupport
import Synchronization
import Testing

@testable import KenshoKit

/// `kensho push` against a live Kaizen started by the test harness (real PostgreSQL, real sockets).
@Suite struct PushTests {
    /// The Allure fixture converted into a results directory, as `kensho convert allure` writes it.
    static func allureResults() throws -> String {
        let directory = NSTemporaryDirectory() + "kensho-results-\(UUID().uuidString)"
        try AllureConverter.convert(directory: fixture("allure/allure-pytest")).write(to: directory)
        return directory
    }

    static func withProject<T: Sendable>(
        configure: (inout KaizenConfiguration) -> Void = { _ in }, _ body: (TestServer, APIClient) async throws -> T
    ) async throws -> T {
        let server = try await TestServer.start(configure: configure)
        do {
            let admin = APIClient(baseURL: server.baseURL, token: server.adminToken)
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let result = try await body(server, admin)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    func options(_ server: TestServer, _ directory: String, externalRunId: String = "ci-1") -> PushOptions {
        PushOptions(
            directory: directory, serverURL: URL(string: server.baseURL)!, token: server.adminToken, project: "web",
            externalRunId: externalRunId, branch: "main", environment: [:],
            retry: RetryPolicy(attempts: 6, baseDelay: 0.05, maxDelay: 3))
    }

    @Test func pushesConvertedResultsWithAttachmentsAndRepushesIdempotently() async throws {
        let directory = try Self.allureResults()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withProject { server, admin in
            let first = try await Push.run(options(server, directory))
            #expect(first.replayed == false)
            #expect(first.uploaded == 3)
            #expect(first.totals.passed == 4 && first.totals.failed == 1 && first.totals.broken == 1 && first.totals.flaky == 1)
            #expect(first.newFailures == 2)
            // Allure for pytest names the module and class as JUnit does, so both reporters give one key.
            #expect(Set(first.newFailureNames) == ["test_shop.TestCart › test_total_is_wrong", "test_shop.TestCart › test_broken_fixture_error"])
            #expect(first.reportUrl.hasSuffix("/runs/\(first.runId)") && !first.reportUrl.contains("/v1/"))
            let run = try await admin.get("/v1/runs/\(first.runId)")
            #expect(run.status == 200)
            #expect(run.object["externalRunId"] as? String == "ci-1")

            // An attachment pushed with the run downloads back byte for byte.
            let cases = try await admin.get("/v1/runs/\(first.runId)/cases")
            let item = try #require((cases.object["items"] as? [[String: Any]])?.first { $0["name"] as? String == "test_quantity[1]" })
            let detail = try await admin.get("/v1/runs/\(first.runId)/cases/\(item["caseId"] as! String)")
            let link = try #require((detail.object["attachments"] as? [[String: Any]])?.first?["downloadUrl"] as? String)
            let downloaded = try await admin.get(String(link.dropFirst(server.baseURL.count)))
            let id = URL(string: link)!.lastPathComponent
            #expect(downloaded.body == FileManager.default.contents(atPath: "\(directory)/attachments/\(id)"))

            // The same push again: the same run, nothing uploaded twice.
            let again = try await Push.run(options(server, directory))
            #expect(again.replayed == true)
            #expect(again.runId == first.runId)
            #expect(again.uploaded == 0 && again.deduplicated == 3)
        }
    }

    @Test func anInterruptedPushCompletesTheSameRunWhenRunAgain() async throws {
        let directory = try Self.allureResults()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withProject { server, admin in
            var interrupted = options(server, directory, externalRunId: "ci-interrupted")
            interrupted.uploadConcurrency = 1
            interrupted.interruptAfterUploads = 1
            await #expect(throws: PushInterrupted.self) { try await Push.run(interrupted) }
            #expect(((try await admin.get("/v1/projects/web/runs")).object["items"] as? [Any])?.isEmpty == true)

            let resumed = try await Push.run(options(server, directory, externalRunId: "ci-interrupted"))
            #expect(resumed.replayed == false)
            #expect(resumed.deduplicated == 1)  // the upload that made it before the interruption
            #expect(resumed.uploaded == 2)
            let runs = (try await admin.get("/v1/projects/web/runs")).object["items"] as? [[String: Any]] ?? []
            #expect(runs.count == 1)
            #expect(runs.first?["id"] as? String == resumed.runId)
        }
    }

    @Test func aServerAnswering429IsRetriedUntilItAccepts() async throws {
        let directory = try Self.allureResults()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // One request of burst, then one every 6 s, on a clock that moves 3 s per request it decides:
        // whatever the machine's speed, every other request meets a 429 with Retry-After, so of the
        // push's calls (init, finalize, the regression read) some meet a 429 and are retried until accepted.
        let ticks = ManualClock(0)
        try await Self.withProject(configure: {
            $0.workspaceRateLimit = .init(perMinute: 10, burstSeconds: 6)
            $0.rateLimitClock = { ticks.tick(3_000_000_000) }
            // The limiter's periodic sweep reads the clock too: a sweep between two requests (a slow, busy
            // machine) moved it 3 s more, refilled the bucket and the push met no 429.
            $0.rateLimitSweepSeconds = 86_400
        }) { server, _ in
            let result = try await Push.run(options(server, directory, externalRunId: "ci-limited"))
            #expect(result.retries >= 1)
            #expect(result.newFailureNames.count == 2)
        }
    }

    @Test func failuresAreTheServersEnvelope() async throws {
        let directory = try Self.allureResults()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withProject { server, _ in
            var wrong = options(server, directory)
            wrong.project = "nope"
            await #expect {
                try await Push.run(wrong)
            } throws: { error in
                guard let failure = error as? KenshoFailure else { return false }
                return failure.status == 404 && failure.message.contains("nope")
            }
        }
    }
}

/// The `kensho` binary as CI runs it: configuration from the environment, exit statuses.
@Suite struct KenshoBinaryTests {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kensho").path
    }

    func kensho(_ arguments: [String], env: [String: String], directory: String? = nil) async throws -> (status: Int32, output: String) {
        // Not in any CI system the tests run in: kensho must not take its variables for the run's.
        let ci = ["GITHUB_", "KAIZEN_", "GITLAB_", "CI_", "JENKINS_", "BUILD_", "CIRCLE", "BUILDKITE", "TF_BUILD", "SYSTEM_"]
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in !ci.contains { key.hasPrefix($0) } }
        for (key, value) in env { environment[key] = value }
        return try await runProcess(Self.binary, arguments, environment: environment, directory: directory)
    }

    /// Three parallel GitLab jobs push their parts: kensho reads the shard and the build's run id from GitLab's
    /// variables; earlier parts report the run open and exit 0, the last one the whole run's verdict, and a part
    /// pushed with --wait waits for it.
    @Test func shardedBuildsAreAssembledOnTheServer() async throws {
        try await PushTests.withProject { server, admin in
            let folder = NSTemporaryDirectory() + "kensho-shards-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            func junit(_ part: Int) throws -> String {
                let path = folder + "/part\(part).xml"
                let failure = part == 3 ? "<failure message=\"boom\">trace</failure>" : ""
                let xml = """
                    <?xml version="1.0" encoding="UTF-8"?>
                    <testsuite name="unit" tests="2" failures="\(part == 3 ? 1 : 0)">
                      <testcase classname="part\(part)" name="test_ok" time="0.01"/>
                      <testcase classname="part\(part)" name="test_other" time="0.02">\(failure)</testcase>
                    </testsuite>
                    """
                try Data(xml.utf8).write(to: URL(fileURLWithPath: path))
                return path
            }
            func env(_ part: Int) -> [String: String] {
                ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web", "GITLAB_CI": "true",
                 "CI_PIPELINE_ID": "501", "CI_JOB_ID": "900\(part)", "CI_JOB_NAME": "unit \(part)/3", "CI_COMMIT_REF_NAME": "main",
                 "CI_COMMIT_SHA": "0123abc", "CI_NODE_INDEX": "\(part)", "CI_NODE_TOTAL": "3"]
            }
            // Part 2 first: the run is open, and a failing test cannot fail this job before the verdict.
            let second = try await kensho(["push", "--junit", try junit(2), "--json"], env: env(2))
            #expect(second.status == 0, "\(second.output)")
            let opened = try JSONSerialization.jsonObject(with: Data(second.output.utf8)) as? [String: Any]
            #expect(opened?["status"] as? String == "open" && opened?["externalRunId"] as? String == "gitlab-501-unit")
            #expect(opened?["shards"] as? [String: Int] == ["received": 1, "total": 3])
            let runID = try #require(opened?["runId"] as? String)

            // Part 1 waits for the verdict; part 3 arrives once part 1 is in.
            async let waiting = kensho(["push", "--junit", try junit(1), "--wait", "--wait-timeout", "300"], env: env(1))
            try await waitUntil("part 1 is stored") {
                (try await admin.get("/v1/runs/\(runID)").object["shards"] as? [String: Int])?["received"] == 2
            }
            let last = try await kensho(["push", "--junit", try junit(3)], env: env(3))
            #expect(last.status == 1, "\(last.output)")  // a new failure in the assembled run
            #expect(last.output.contains("gitlab-501-unit (3 of 3 shards) to web: 5 passed, 1 failed"), "\(last.output)")
            #expect(last.output.contains("1 new failure"))
            let waited = try await waiting
            #expect(waited.status == 1, "\(waited.output)")
            #expect(waited.output.contains("(3 of 3 shards)") && waited.output.contains("✗ part3 › test_other"), "\(waited.output)")

            // Bad shards are usage errors; a local part without a shared run id is refused before any request.
            let past = try await kensho(["push", "--junit", try junit(1), "--shard", "4/3"], env: env(1))
            #expect(past.status == 2 && past.output.contains("K must be 1–3"), "\(past.output)")
            let local = try await kensho(
                ["push", "--junit", try junit(1), "--shard", "1/2", "--branch", "main"],
                env: ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web"])
            #expect(local.status == 2 && local.output.contains("--external-run-id"), "\(local.output)")
        }
    }

    @Test func exitStatusesAndOutputs() async throws {
        let junit = fixture("junit/pytest-xunit1.xml")
        try await PushTests.withProject { server, _ in
            let env = ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web",
                       "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "77", "GITHUB_JOB": "unit", "GITHUB_REF_NAME": "main",
                       "GITHUB_SHA": "0123abc"]
            // Default --fail-on new-failures: the first run's failures are all new.
            let first = try await kensho(["push", "--junit", junit], env: env)
            #expect(first.status == 1, "\(first.output)")
            #expect(first.output.contains("3 new failures"))
            #expect(first.output.contains("✗ test_shop.TestCart › test_total_is_wrong"))
            #expect(first.output.contains("Report: \(server.baseURL)/runs/run_"))

            // The same CI job again: the same run (idempotent), now reported as already pushed.
            let never = try await kensho(["push", "--junit", junit, "--fail-on", "never", "--json"], env: env)
            #expect(never.status == 0, "\(never.output)")
            let json = try JSONSerialization.jsonObject(with: Data(never.output.utf8)) as? [String: Any]
            #expect(json?["replayed"] as? Bool == true)
            #expect(json?["externalRunId"] as? String == "gha-77-1-unit")

            var next = env
            next["GITHUB_RUN_ID"] = "78"
            let failures = try await kensho(["push", "--junit", junit, "--fail-on", "failures", "--quiet"], env: next)
            #expect(failures.status == 1)
            #expect(failures.output.isEmpty)  // nothing new failed: quiet prints nothing, failures still exit 1

            next["GITHUB_RUN_ID"] = "79"
            let ok = try await kensho(["push", "--junit", junit], env: next)
            #expect(ok.status == 0, "\(ok.output)")  // no new failures since run 78
            #expect(ok.output.contains("0 new failures"))

            var badToken = env
            badToken["KAIZEN_TOKEN"] = "krt_notarealtokennotarealtokennotarealtoken12"
            let refused = try await kensho(["push", "--junit", junit], env: badToken)
            #expect(refused.status == 3)
            #expect(refused.output.contains("Kaizen answered 401"))

            let noURL = try await kensho(["push", "--junit", junit], env: ["KAIZEN_TOKEN": "x"])
            #expect(noURL.status == 2)
            #expect(noURL.output.contains("--url or KAIZEN_URL"))

            let noFiles = try await kensho(["push", "--junit", "/nonexistent/*.xml"], env: env)
            #expect(noFiles.status == 2)

            // An allure-results directory, converted on the fly, into another project of the same workspace.
            next["GITHUB_RUN_ID"] = "80"
            next["KAIZEN_PROJECT"] = "api"
            #expect(try await APIClient(baseURL: server.baseURL, token: server.adminToken)
                .post("/v1/projects", json: ["slug": "api", "name": "API"]).status == 201)
            let allure = try await kensho(["push", "--allure", fixture("allure/allure-pytest"), "--fail-on", "never"], env: next)
            #expect(allure.status == 0, "\(allure.output)")
            #expect(allure.output.contains("Pushed gha-80-1-unit to api: 4 passed, 1 failed, 1 broken, 1 skipped, 1 flaky"))
            #expect(allure.output.contains("Attachments: 3 uploaded"))
        }
    }

    /// With a gate, `--fail-on` defaults to it: the failing rules are printed and the exit is 1; quarantined
    /// failures are forgiven; `--fail-on new-failures` still judges by the regression alone.
    @Test func theGateDecidesTheExitStatus() async throws {
        let junit = fixture("junit/pytest-xunit1.xml")
        try await PushTests.withProject { server, _ in
            let admin = APIClient(baseURL: server.baseURL, token: server.adminToken)
            let env = ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web",
                       "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "90", "GITHUB_JOB": "unit", "GITHUB_REF_NAME": "main",
                       "GITHUB_SHA": "0123abc"]
            #expect(try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxFailures", "limit": 0]]]).status == 200)
            let gated = try await kensho(["push", "--junit", junit], env: env)
            #expect(gated.status == 1, "\(gated.output)")
            #expect(gated.output.contains("Quality gate: FAILED"))
            #expect(gated.output.contains("✗ maxFailures: 3 (limit 0)"))

            // The same failures again are not new: by the regression alone this push is fine.
            var next = env
            next["GITHUB_RUN_ID"] = "91"
            let regression = try await kensho(["push", "--junit", junit, "--fail-on", "new-failures", "--json"], env: next)
            #expect(regression.status == 0, "\(regression.output)")
            let json = try JSONSerialization.jsonObject(with: Data(regression.output.utf8)) as? [String: Any]
            #expect((json?["gate"] as? [String: Any])?["status"] as? String == "failed")

            // Quarantine every failing case: the gate passes and says what it forgave.
            try await waitUntil("both roll-ups are done") {
                try await admin.get("/v1/workspaces/default/jobs?state=done").array.count >= 2
            }
            let cases = try await admin.get("/v1/projects/web/cases?status=failed").object["items"] as? [[String: Any]] ?? []
            let broken = try await admin.get("/v1/projects/web/cases?status=broken").object["items"] as? [[String: Any]] ?? []
            #expect(cases.count + broken.count == 3)
            for item in cases + broken {
                let id = try #require(item["id"] as? String)
                #expect(try await admin.post("/v1/cases/\(id)/quarantine", json: ["reason": "JIRA-7"]).status == 200)
            }
            next["GITHUB_RUN_ID"] = "92"
            let forgiven = try await kensho(["push", "--junit", junit], env: next)
            #expect(forgiven.status == 0, "\(forgiven.output)")
            #expect(forgiven.output.contains("Quality gate: passed"))
            #expect(forgiven.output.contains("Forgiven (quarantined): 3 failures"))
            #expect(forgiven.output.contains("— JIRA-7"))

            // The list, for runners that skip instead.
            let pytest = try await kensho(["quarantine", "list", "--format", "pytest"], env: env)
            #expect(pytest.status == 0, "\(pytest.output)")
            let lines = pytest.output.split(separator: "\n")
            #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("--deselect=") })
            #expect(lines.contains("--deselect=test_shop.py::TestCart::test_total_is_wrong"))
            let listed = try await kensho(["quarantine", "list"], env: env)
            let items = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]] ?? []
            #expect(items.count == 3 && items.allSatisfy { $0["reason"] as? String == "JIRA-7" })
            let junitList = try await kensho(["quarantine", "list", "--format", "junit"], env: env)
            #expect(junitList.output.contains("<testsuite name=\"kaizen-quarantine\" tests=\"3\" skipped=\"3\">"))
            #expect(junitList.output.contains("<skipped message=\"quarantined: JIRA-7\"/>"))
        }
    }

    /// `--summary FILE` writes Markdown that renders (markdown-it, a CommonMark renderer) with the report's
    /// links and with a hostile test name left as text; in GitHub Actions the step summary gets it.
    @Test func theJobSummaryRendersWithItsLinks() async throws {
        let directory = NSTemporaryDirectory() + "kensho-summary-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let hostile = "evil [link](http://evil.example/) <img src=x onerror=alert(1)> *bold* | pipe"
        let junit = directory + "/report.xml"
        try """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuite name="suite" tests="2" failures="1">
              <testcase classname="tests.Cart" name="adds"/>
              <testcase classname="tests.Cart" name="\(hostile.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;"))">
                <failure message="boom">trace</failure>
              </testcase>
            </testsuite>
            """.write(toFile: junit, atomically: true, encoding: .utf8)
        try await PushTests.withProject { server, admin in
            #expect(try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxFailures", "limit": 0]]]).status == 200)
            let stepSummary = directory + "/step-summary.md"
            FileManager.default.createFile(atPath: stepSummary, contents: Data("earlier step\n".utf8))
            let env = ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web",
                       "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "95", "GITHUB_JOB": "unit", "GITHUB_REF_NAME": "main",
                       "GITHUB_SHA": "0123abc", "GITHUB_STEP_SUMMARY": stepSummary]
            let file = directory + "/summary.md"
            let pushed = try await kensho(["push", "--junit", junit, "--summary", file], env: env)
            #expect(pushed.status == 1, "\(pushed.output)")
            let markdown = try String(contentsOfFile: file, encoding: .utf8)
            #expect(markdown.contains("quality gate failed"))
            // Rendered by a CommonMark renderer: every link is Kaizen's, the hostile name is text.
            let script = """
                import json, re, sys
                from markdown_it import MarkdownIt
                html = MarkdownIt("commonmark").enable("table").render(open(sys.argv[1]).read())
                print(json.dumps({"html": html, "links": re.findall(r'<a href="([^"]*)">', html)}))
                """
            let rendered = try await runProcess("/usr/bin/env", ["python3", "-c", script, file], environment: ProcessInfo.processInfo.environment)
            #expect(rendered.status == 0, "\(rendered.output)")
            let json = try JSONSerialization.jsonObject(with: Data(rendered.output.utf8)) as? [String: Any] ?? [:]
            let links = json["links"] as? [String] ?? []
            let html = json["html"] as? String ?? ""
            #expect(links.count == 2, "\(links)")
            #expect(links.allSatisfy { $0.hasPrefix(server.baseURL + "/runs/run_") })
            #expect(links.contains { $0.contains("/cases/case_") })
            #expect(!html.contains("<img") && !html.contains("<em>") && !html.contains("evil.example/\""))
            #expect(html.contains("<td style=\"text-align:right\">1</td>"))  // the totals table
            #expect(html.contains("<code>maxFailures</code>"))

            // No --summary in GitHub Actions: appended to the step summary.
            var next = env
            next["GITHUB_RUN_ID"] = "96"
            _ = try await kensho(["push", "--junit", junit, "--fail-on", "never"], env: next)
            let step = try String(contentsOfFile: stepSummary, encoding: .utf8)
            #expect(step.hasPrefix("earlier step\n### Kaizen · web · gha\\-96\\-1\\-unit"), "\(step)")
        }
    }

    /// Issue 11 §8, as a new user meets it: a wrong port fails at once with one sentence; outside CI
    /// the branch and commit come from the git checkout kensho runs in; with no branch known the
    /// push is refused instead of landing in `main`; input problems exit 2.
    @Test func aNewUserOutsideCI() async throws {
        let junit = fixture("junit/pytest-xunit1.xml")
        try await PushTests.withProject { server, admin in
            // Nothing listens on this port: refused, immediately, said in one line.
            let port = freeLoopbackPort()
            let started = ContinuousClock.now
            let wrong = try await kensho(
                ["push", "--junit", junit, "--branch", "main"],
                env: ["KAIZEN_URL": "http://127.0.0.1:\(port)", "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web"])
            #expect(wrong.status == 3, "\(wrong.output)")
            #expect(ContinuousClock.now - started < .seconds(60), "a refused connection took \(ContinuousClock.now - started)")
            #expect(wrong.output.contains("could not reach Kaizen at http://127.0.0.1:\(port)"), "\(wrong.output)")
            #expect(wrong.output.contains("connection refused"), "\(wrong.output)")
            #expect(!wrong.output.contains("Client error") && !wrong.output.contains("operationInput"))
            #expect(wrong.output.split(separator: "\n").count == 1, "\(wrong.output)")

            // A git checkout on a feature branch: its branch and commit, read where kensho runs.
            let repo = NSTemporaryDirectory() + "kensho-git-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: repo) }
            try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
            for command in [
                ["init", "-q", "-b", "feature-x"], ["-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-q", "--allow-empty", "-m", "x"],
            ] {
                #expect(try await runProcess("/usr/bin/git", ["-C", repo] + command).status == 0)
            }
            let sha = try await runProcess("/usr/bin/git", ["-C", repo, "rev-parse", "HEAD"]).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let env = ["KAIZEN_URL": server.baseURL, "KAIZEN_TOKEN": server.adminToken, "KAIZEN_PROJECT": "web"]
            let pushed = try await kensho(["push", "--junit", junit, "--fail-on", "never", "--json"], env: env, directory: repo)
            #expect(pushed.status == 0, "\(pushed.output)")
            let runs = try await admin.get("/v1/projects/web/runs").object["items"] as? [[String: Any]] ?? []
            #expect(runs.first?["branch"] as? String == "feature-x")
            #expect(runs.first?["commit"] as? String == sha)

            // Not in CI, not in a checkout, no --branch: refused before anything is sent.
            let nowhere = NSTemporaryDirectory() + "kensho-nogit-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: nowhere, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: nowhere) }
            let noBranch = try await kensho(["push", "--junit", junit], env: env, directory: nowhere)
            #expect(noBranch.status == 2, "\(noBranch.output)")
            #expect(noBranch.output.contains("no branch"))
            #expect(try await admin.get("/v1/projects/web/runs").object["items"] as? [Any] != nil)

            // Input problems are exit 2: no run.json, no project.
            let empty = try await kensho(["push", nowhere, "--branch", "main"], env: env)
            #expect(empty.status == 2 && empty.output.contains("no run.json"), "\(empty.output)")
            var noProject = env
            noProject["KAIZEN_PROJECT"] = nil
            let unnamed = try await kensho(["push", "--junit", junit, "--branch", "main"], env: noProject)
            #expect(unnamed.status == 2 && unnamed.output.contains("no project"), "\(unnamed.output)")
        }
    }
}
