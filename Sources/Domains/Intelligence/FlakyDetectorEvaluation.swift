import Foundation

/// How good the flaky verdict is: labelled synthetic histories replayed through the roll-up's own scoring
/// path (`WindowFold` under a policy, runs judged infrastructure failures left out as the roll-up leaves
/// them out), scored as auto-quarantine would act — a case counts as flagged once its verdict turns flaky.
///
/// Deterministic for a seed, so the same figures come out on every machine; used by a test (the goal) and
/// by `ops/load.sh detector` (the table for BENCHMARKS.md).
public enum FlakyDetectorEvaluation {
    /// What a synthetic case really is.
    public enum Truth: Sendable, Hashable, CustomStringConvertible {
        /// Fails independently with this probability; `retried` when CI retries a failure within the run
        /// (half of the retries then pass, which is what makes a test flaky rather than broken).
        case flaky(rate: Double, retried: Bool)
        /// Flaky at 20 % until a fix lands halfway through the history, then always passes.
        case fixedAfterFlaky
        case stable
        /// Passes, then fails in every run from a commit on.
        case brokenSinceCommit
        /// Breaks for a few runs, then is fixed.
        case breakThenFix(runs: Int)

        public var isFlaky: Bool {
            switch self {
            case .flaky, .fixedAfterFlaky: true
            default: false
            }
        }

        public var description: String {
            switch self {
            case .flaky(let rate, let retried): "flaky \(Int((rate * 100).rounded())) %\(retried ? ", retried" : "")"
            case .fixedAfterFlaky: "flaky, then fixed"
            case .stable: "stable"
            case .brokenSinceCommit: "broken since a commit"
            case .breakThenFix(let runs): "broken for \(runs) runs, then fixed"
            }
        }
    }

    /// One class of cases and what the detector made of it.
    public struct Row: Sendable {
        public let truth: Truth
        public let cases: Int
        public let flagged: Int
        /// Results (of the case, infrastructure runs left out) until it was first flagged; nil if never.
        public let latencies: [Int]

        public var medianLatency: Int? {
            guard !latencies.isEmpty else { return nil }
            return latencies.sorted()[latencies.count / 2]
        }
    }

    public struct Report: Sendable {
        public let rows: [Row]
        public let runs: Int
        public let infrastructureRuns: Int

        public var truePositives: Int { rows.filter(\.truth.isFlaky).reduce(0) { $0 + $1.flagged } }
        public var falsePositives: Int { rows.filter { !$0.truth.isFlaky }.reduce(0) { $0 + $1.flagged } }
        public var positives: Int { rows.filter(\.truth.isFlaky).reduce(0) { $0 + $1.cases } }
        public var precision: Double { truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives) }
        public var recall: Double { positives == 0 ? 1 : Double(truePositives) / Double(positives) }
        public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }
        /// Broken cases (since a commit, or for a while) the detector called flaky: the goal is none.
        public var brokenCalledFlaky: Int {
            rows.filter {
                switch $0.truth {
                case .brokenSinceCommit, .breakThenFix: true
                default: false
                }
            }.reduce(0) { $0 + $1.flagged }
        }
    }

    /// The classes and how many cases of each a project holds in the evaluation.
    public static let corpus: [(Truth, Int)] = [
        (.flaky(rate: 0.01, retried: true), 40), (.flaky(rate: 0.02, retried: true), 40), (.flaky(rate: 0.05, retried: true), 40),
        (.flaky(rate: 0.05, retried: false), 40), (.flaky(rate: 0.10, retried: false), 40), (.flaky(rate: 0.20, retried: false), 40),
        (.flaky(rate: 0.40, retried: false), 40), (.fixedAfterFlaky, 40),
        (.stable, 400), (.brokenSinceCommit, 60), (.breakThenFix(runs: 1), 40), (.breakThenFix(runs: 3), 40),
    ]

    /// Replays `runs` runs of the corpus (every `infrastructureEvery`-th one a run where everything fails)
    /// through the policy's scoring.
    public static func evaluate(policy: FlakyPolicy = .default, runs: Int = 200, infrastructureEvery: Int = 25, seed: UInt64 = 42)
        -> Report
    {
        var rng = SplitMix64(seed: seed)
        var cases: [(id: String, truth: Truth, breakAt: Int)] = []
        for (truth, count) in corpus {
            for index in 0..<count {
                let breakAt = Int.random(in: runs / 5...(runs * 4 / 5), using: &rng)
                cases.append(("\(truth)#\(index)", truth, breakAt))
            }
        }
        var histories: [String: FlakyHistory] = [:]
        var flaggedAt: [String: Int] = [:]
        var resultsSeen: [String: Int] = [:]
        var infrastructure = 0
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        for run in 0..<runs {
            let runID = "run-\(run)"
            if infrastructureEvery > 0, run % infrastructureEvery == infrastructureEvery - 1 {
                // Everything fails: the roll-up judges the run an infrastructure failure and folds nothing.
                let executed = cases.count
                precondition(policy.isInfrastructureFailure(executed: executed, failed: executed))
                infrastructure += 1
                continue
            }
            var results: [RolledResult] = []
            results.reserveCapacity(cases.count)
            for item in cases {
                let (status, retried) = outcome(item.truth, run: run, breakAt: item.breakAt, using: &rng)
                results.append(RolledResult(caseID: item.id, status: status, retried: retried, durationMS: 1))
            }
            var fold = WindowFold(policy: policy, stored: histories)
            fold.fold(RolledRun(id: runID, branch: "main", createdAt: start.addingTimeInterval(Double(run) * 600), seq: Int64(run), results: results))
            for item in cases {
                resultsSeen[item.id, default: 0] += 1
                if flaggedAt[item.id] == nil, fold.verdict(of: item.id)?.isFlaky == true { flaggedAt[item.id] = resultsSeen[item.id] }
            }
            histories = fold.histories
        }
        var rows: [Row] = []
        for (truth, _) in corpus {
            let members = cases.filter { $0.truth == truth }
            let latencies = members.compactMap { flaggedAt[$0.id] }
            rows.append(Row(truth: truth, cases: members.count, flagged: latencies.count, latencies: latencies))
        }
        return Report(rows: rows, runs: runs, infrastructureRuns: infrastructure)
    }

    static func outcome(_ truth: Truth, run: Int, breakAt: Int, using rng: inout SplitMix64) -> (CaseStatus, Bool) {
        switch truth {
        case .stable: return (.passed, false)
        case .brokenSinceCommit: return (run >= breakAt ? .failed : .passed, false)
        case .breakThenFix(let length): return (run >= breakAt && run < breakAt + length ? .failed : .passed, false)
        case .fixedAfterFlaky:
            if run >= breakAt { return (.passed, false) }
            return (Double.random(in: 0..<1, using: &rng) < 0.2 ? .failed : .passed, false)
        case .flaky(let rate, let retried):
            guard Double.random(in: 0..<1, using: &rng) < rate else { return (.passed, false) }
            // A retry of a flaky failure passes as often as the test does.
            if retried, Double.random(in: 0..<1, using: &rng) >= rate { return (.passed, true) }
            return (.failed, false)
        }
    }
}

/// A small, fast, seedable generator (SplitMix64), so the evaluation is the same everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
