import Domains
import Testing

/// The flaky score on crafted histories with known answers.
@Suite struct FlakinessTests {
    func history(_ outcomes: String) -> FlakyHistory {
        var h = FlakyHistory()
        for (index, char) in outcomes.enumerated() {
            h.append(FlakyOutcome(rawValue: char)!, runID: "run_\(index)")
        }
        return h
    }

    @Test func aFlipFloppingCaseIsFlaky() {
        let verdict = history("PFPFPFPFPF").verdict(.default)
        #expect(verdict.flips == 9 && verdict.results == 10)
        #expect(verdict.score == 1)
        #expect(verdict.isFlaky)
    }

    @Test func aCaseBrokenSinceACommitIsNotFlaky() {
        let verdict = history("PPPPPPFFFFFFFFF").verdict(.default)
        #expect(verdict.flips == 1)
        #expect(verdict.failures == 9)
        #expect(!verdict.isFlaky)
    }

    @Test func aBreakAndItsFixAreNotFlakinessButASporadicFailureIs() {
        // Broken for three runs, then fixed: two flips.
        #expect(!history("PPPPFFFPPPP").verdict(.default).isFlaky)
        // Two isolated failures among passes: four flips in ten results.
        let sporadic = history("PPPFPPPFPP").verdict(.default)
        #expect(sporadic.flips == 4)
        #expect(abs(sporadic.score - 4.0 / 9) < 1e-12)
        #expect(sporadic.isFlaky)
    }

    @Test func passingOnARetryIsEvidenceOnItsOwn() {
        let verdict = history("PPPPRPPPPP").verdict(.default)
        #expect(verdict.flips == 0 && verdict.retryPasses == 1)
        #expect(abs(verdict.score - 0.1) < 1e-12)
        // Failing and passing on the same code in one run is flakiness whatever the score (below the
        // 0.2 threshold here); the detector benchmark measures what this rule buys.
        #expect(verdict.isFlaky)
        #expect(!history("PPPR").verdict(.default).isFlaky)  // still needs `minResults`
        #expect(history("PPRPPRPPRP").verdict(.default).isFlaky)
    }

    @Test func tooFewResultsGiveNoVerdict() {
        #expect(!history("PFPF").verdict(.default).isFlaky)
        #expect(history("PFPFP").verdict(.default).isFlaky)
    }

    @Test func onlyTheWindowCounts() {
        // Flip-flopped long ago, stable for the last 30 results.
        let h = history("PFPFPFPFPF" + String(repeating: "P", count: 30))
        #expect(!h.verdict(.default).isFlaky)
        var wide = FlakyPolicy.default
        wide.window = 40
        #expect(h.verdict(wide).isFlaky)
        #expect(h.verdict(wide).flips == 10)
    }

    @Test func storageAndEvidenceAreBounded() {
        let h = history(String(repeating: "PF", count: 80))
        #expect(h.outcomes.count == FlakyPolicy.maxWindow)
        #expect(h.outcomes == String(repeating: "PF", count: 50))  // the newest outcomes are kept
        #expect(h.evidence.count == FlakyHistory.maxEvidence)
        #expect(h.evidence.last == "run_159")
        #expect(h.lastEventWasEvidence)
    }

    /// A stored window holding anything but outcome letters (it never should) has the rest skipped.
    @Test func unknownCharactersInAStoredWindowAreSkipped() {
        var h = FlakyHistory(outcomes: "PéF?P", evidence: [])
        #expect(h.verdict(.default).results == 3 && h.verdict(.default).flips == 2)
        h.append(.failed, runID: "run_x")
        #expect(h.outcomes == "PéF?PF" && h.lastEventWasEvidence && h.evidence == ["run_x"])
    }

    @Test func skippedResultsSayNothing() {
        #expect(FlakyOutcome(status: .skipped, retried: false) == nil)
        #expect(FlakyOutcome(status: .broken, retried: false) == .failed)
        #expect(FlakyOutcome(status: .passed, retried: true) == .passedOnRetry)
    }

    @Test func infrastructureFailuresAreRecognized() {
        let policy = FlakyPolicy.default
        #expect(policy.isInfrastructureFailure(executed: 20, failed: 11))
        #expect(!policy.isInfrastructureFailure(executed: 20, failed: 10))
        #expect(!policy.isInfrastructureFailure(executed: 4, failed: 4))  // too small to judge
    }

    @Test func policyProblemsNameTheirFields() {
        #expect(FlakyPolicy.default.problems().isEmpty)
        let bad = FlakyPolicy(window: 1, threshold: 0, minResults: 50, minFlips: 0, infraFailureRatio: 1.5, infraMinCases: 0)
        #expect(bad.problems().map(\.pointer) == ["/window", "/threshold", "/minResults", "/minFlips", "/infraFailureRatio", "/infraMinCases"])
    }
}

@Suite struct AnalyticsMetricTests {
    @Test func dailyValues() {
        let day = DailyCounts(runs: 2, passed: 90, failed: 6, broken: 4, skipped: 5, flaky: 3, durationMs: 10_000)
        #expect(day.value(.passrate) == 0.9)
        #expect(day.value(.failures) == 10)
        #expect(day.value(.duration) == 5_000)
        #expect(day.value(.flakiness) == 0.03)
        #expect(DailyCounts().value(.passrate) == nil)  // no runs: a gap, not a zero
        #expect(DailyCounts().value(.failures) == nil)
    }
}

@Suite struct FlakyPolicyBoundsTests {
    /// Issue 11 §2: any integer a client sends is checked without arithmetic that could trap.
    @Test func extremeIntegersAreProblemsNotTraps() {
        for window in [Int.min, -1, 0, 1, 101, Int.max] {
            let policy = FlakyPolicy(
                window: window, threshold: 0.2, minResults: Int.min, minFlips: Int.max, infraFailureRatio: 0.5, infraMinCases: Int.min)
            let pointers = Set(policy.problems().map(\.pointer))
            #expect(pointers.isSuperset(of: ["/window", "/minResults", "/minFlips", "/infraMinCases"]), "\(window)")
        }
    }
}
