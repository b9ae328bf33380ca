import Foundation
import PropertyBased
import Testing

@testable import Domains

/// Folding several runs at once (windows, case verdicts, case stats) gives exactly what folding them
/// one at a time gives — the promise that lets storage write each case once per batch.
@Suite struct RollUpFoldTests {
    /// A random history: up to 12 runs on one or two branches of 6 cases, some of them flip-flopping.
    static let histories = Generator<[RolledRun], Shrink.None<[RolledRun]>>(run: { rng in
        let branches = Bool.random(using: &rng) ? ["main"] : ["main", "feature"]
        var branch = "main"
        return (0..<Int.random(in: 1...12, using: &rng)).map { index in
            // Runs keep a branch for a while, so a batch holds both long and short same-branch stretches.
            if Int.random(in: 0..<4, using: &rng) == 0 { branch = branches.randomElement(using: &rng)! }
            let results = (0..<6).flatMap { c -> [RolledResult] in
                let status: CaseStatus =
                    c < 2 ? [.passed, .failed].randomElement(using: &rng)! : [.passed, .passed, .passed, .skipped, .broken].randomElement(using: &rng)!
                let result = RolledResult(
                    caseID: "c\(c)", status: status, retried: status == .passed && Int.random(in: 0..<8, using: &rng) == 0,
                    durationMS: Int64.random(in: 0...900, using: &rng))
                // Now and then a case is reported twice in one run.
                return c == 5 && Int.random(in: 0..<10, using: &rng) == 0 ? [result, result] : [result]
            }
            return RolledRun(
                id: "run\(index)", branch: branch, createdAt: Date(timeIntervalSince1970: Double(1_000 + index / 2)),
                seq: Int64(index), results: results)
        }
    })

    /// The stored state the folds work on: windows per (case, branch), whether each case is flaky, and
    /// the flaky.detected events so far as "run case".
    struct Stored: Equatable {
        var windows: [String: FlakyHistory] = [:]
        var flaky: [String: Bool] = [:]
        var verdicts: [String: BranchVerdict] = [:]
        var detected: [String] = []
    }

    /// Folds `runs` as one batch onto `stored`, split into same-branch stretches as storage does.
    static func fold(_ runs: [RolledRun], onto stored: inout Stored, policy: FlakyPolicy) {
        var replay = CaseVerdictReplay()
        var start = 0
        while start < runs.count {
            var end = start
            while end + 1 < runs.count && runs[end + 1].branch == runs[start].branch { end += 1 }
            let branch = runs[start].branch
            var mine: [String: FlakyHistory] = [:]
            for (key, history) in stored.windows where key.hasSuffix("|" + branch) { mine[String(key.split(separator: "|")[0])] = history }
            var fold = WindowFold(policy: policy, stored: mine)
            for run in runs[start...end] { fold.fold(run) }
            fold.forEachTouched { caseID, window, _, _, _ in stored.windows[caseID + "|" + branch] = window }
            var others: [String: BranchVerdict] = [:]
            for caseID in fold.movedCases {
                for (key, history) in stored.windows where key.hasPrefix(caseID + "|") && !key.hasSuffix("|" + branch) {
                    let verdict = history.verdict(policy)
                    let candidate = BranchVerdict(branch: String(key.split(separator: "|")[1]), score: verdict.score, isFlaky: verdict.isFlaky)
                    if others[caseID].map({ candidate.outranks($0) }) ?? true { others[caseID] = candidate }
                }
            }
            replay.replay(fold, branch: branch, storedFlaky: stored.flaky, otherBranches: others)
            start = end + 1
        }
        for (caseID, flaky) in replay.isFlaky { stored.flaky[caseID] = flaky }
        for (caseID, change) in replay.changes { stored.verdicts[caseID] = change.verdict }
        for (run, cases) in replay.detected { stored.detected += cases.map { "\(run.id) \($0.caseID)" } }
    }

    @Test func aBatchFoldsExactlyAsItsRunsOneByOne() async {
        let policy = FlakyPolicy(window: 6, threshold: 0.3, minResults: 3, minFlips: 2, infraFailureRatio: 0.8, infraMinCases: 10)
        await propertyCheck(count: 400, input: Self.histories) { runs in
            var oneByOne = Stored()
            for run in runs { Self.fold([run], onto: &oneByOne, policy: policy) }
            // The same runs in batches cut at random places.
            var batched = Stored()
            var start = 0
            while start < runs.count {
                let cut = min(runs.count, start + 1 + Int((runs[start].results.first?.durationMS ?? 0) % 4))
                Self.fold(Array(runs[start..<cut]), onto: &batched, policy: policy)
                start = cut
            }
            #expect(batched == oneByOne)

            let whole = CaseStatsDelta.fold(runs)
            var summed: [String: (runs: Int, failed: Int, duration: Int64, last: String)] = [:]
            for run in runs {
                let one = CaseStatsDelta.fold([run])
                for (caseID, delta) in one.deltas {
                    let before = summed[caseID] ?? (0, 0, 0, "")
                    summed[caseID] = (before.runs + delta.runs, before.failed + delta.failed, before.duration + delta.durationMS, delta.lastRunID)
                }
            }
            #expect(whole.deltas.count == summed.count)
            for (caseID, delta) in whole.deltas {
                #expect(delta.runs == summed[caseID]?.runs && delta.failed == summed[caseID]?.failed)
                #expect(delta.durationMS == summed[caseID]?.duration && delta.lastRunID == summed[caseID]?.last)
            }
        }
    }
}
