import Foundation
import Testing

@testable import Domains

@Suite struct QualityGateTests {
    /// A validated run of `cases` (name, suite, status, retried first) on `branch`.
    func run(_ cases: [(String, String, String, Bool)], branch: String = "main", started: String? = nil, finished: String? = nil)
        throws -> ValidatedRun
    {
        var totals = RunTotals()
        let items = cases.map { name, suite, status, retried in
            totals.count(CaseStatus(rawValue: status)!, flaky: retried && status == "passed")
            return KenshoCase(
                name: name, suite: suite, status: status, durationMs: 1000,
                retries: retried ? [KenshoAttempt(status: "failed")] : nil)
        }
        let document = KenshoRun(
            project: .init(slug: "web"), externalRunId: "r", branch: branch, startedAt: started, finishedAt: finished,
            totals: .init(passed: totals.passed, failed: totals.failed, skipped: totals.skipped, broken: totals.broken, flaky: totals.flaky),
            cases: items)
        guard case .valid(let valid) = KenshoValidator().validate(document, knownAttachments: []) else {
            throw DomainError.internalError
        }
        return valid
    }

    @Test(arguments: [
        ("main", "main", true), ("release/*", "release/1.2", true), ("release/*", "release", false),
        ("*", "anything/at/all", true), ("feat-?", "feat-a", true), ("feat-?", "feat-ab", false),
        ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false), ("", "", true), ("**", "x", true),
    ])
    func globs(pattern: String, branch: String, matches: Bool) {
        #expect(Glob.matches(pattern, branch) == matches)
    }

    @Test func everyRuleOnKnownNumbers() throws {
        let validated = try run(
            [("a", "Core", "passed", false), ("b", "Core", "failed", false), ("c", "UI", "passed", true),
             ("d", "UI", "skipped", false), ("e", "Pay", "broken", false), ("f", "UI", "passed", true)],
            started: "2026-04-30T12:00:00Z", finished: "2026-04-30T12:01:30Z")
        let buckets: [RegressionBucket?] = [nil, .stillFailing, nil, nil, .newFailure, nil]
        let gate = QualityGate(rules: [
            GateRule(rule: .maxFailures, limit: 1), GateRule(rule: .maxNewFailures, limit: 0), GateRule(rule: .minPassRate, limit: 0.6),
            GateRule(rule: .minTestsCount, limit: 5), GateRule(rule: .maxDurationMs, limit: 90_000), GateRule(rule: .maxNewFlaky, limit: 0),
            GateRule(rule: .requiredSuites, suites: ["Core", "UI", "Gone"]),
        ])
        // "c" is already known flaky, "f" is new; "e" is quarantined.
        let verdict = QualityGate.evaluate(
            gate, run: validated, buckets: buckets, context: GateContext(quarantined: ["Pay::e": "tracked"], knownFlaky: ["UI::c"]))
        let actual = Dictionary(uniqueKeysWithValues: verdict.rules.map { ($0.rule, ($0.actual, $0.passed)) })
        #expect(actual[.maxFailures]! == (1, true))  // b; e forgiven
        #expect(actual[.maxNewFailures]! == (0, true))  // e's new failure forgiven
        #expect(actual[.minPassRate]! == (0.75, true))  // a, c, f of a, b, c, f
        #expect(actual[.minTestsCount]! == (5, true))  // d skipped; e counted
        #expect(actual[.maxDurationMs]! == (90_000, true))
        #expect(actual[.maxNewFlaky]! == (1, false))
        #expect(actual[.requiredSuites]! == (2, false))
        #expect(verdict.rules.last?.detail == "missing: Gone; failing: Core")
        #expect(verdict.status == .failed)
        #expect(verdict.forgiven == [.init(key: "Pay::e", name: "e", status: .broken, reason: "tracked")])
    }

    @Test func branchesChooseTheRulesAndNoRuleMeansNone() throws {
        let gate = QualityGate(rules: [GateRule(rule: .maxFailures, limit: 0, branches: ["main", "release/*"])])
        let failing = [("a", "S", "failed", false)]
        #expect(QualityGate.evaluate(gate, run: try run(failing), buckets: [nil], context: .init()).status == .failed)
        #expect(QualityGate.evaluate(gate, run: try run(failing, branch: "release/2"), buckets: [nil], context: .init()).status == .failed)
        let feature = QualityGate.evaluate(gate, run: try run(failing, branch: "feature/x"), buckets: [nil], context: .init())
        #expect(feature.status == .none && feature.rules.isEmpty)
        #expect(QualityGate.evaluate(nil, run: try run(failing), buckets: [nil], context: .init()).status == .none)
        // Without start and finish, the duration is the cases' sum.
        let slow = QualityGate(rules: [GateRule(rule: .maxDurationMs, limit: 1500)])
        let verdict = QualityGate.evaluate(slow, run: try run([("a", "S", "passed", false), ("b", "S", "passed", false)]), buckets: [nil, nil], context: .init())
        #expect(verdict.rules.first?.actual == 2000 && verdict.status == .failed)
    }

    @Test func drafts() {
        let good = QualityGate.validate(.init(rules: [.init(rule: "minPassRate", limit: 0.95, suites: nil, branches: ["main"])]))
        #expect((try? good.get())?.rules.first?.rule == .minPassRate)
        guard case .failure(let error) = QualityGate.validate(.init(rules: Array(repeating: .init(rule: "maxFailures", limit: 0, suites: nil, branches: nil), count: 51)))
        else { Issue.record("51 rules were accepted"); return }
        #expect(error.pointers == ["/rules"])
        guard case .failure = QualityGate.validate(.init(rules: [.init(rule: "maxFailures", limit: .infinity, suites: nil, branches: nil)])) else {
            Issue.record("an infinite limit was accepted"); return
        }
    }
}
