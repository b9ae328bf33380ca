/// Flaky-test scoring: separates a test that flip-flops from one that broke and stays broken.
///
/// Each case keeps, per branch, the outcomes of its latest results in the order they were rolled up
/// (`P` passed, `R` passed on a retry within the run, `F` failed or broken; skipped results and runs
/// judged infrastructure failures are left out). Over the last `policy.window` of them:
///
/// - flips = adjacent outcomes whose pass/fail differs (`R` counts as a pass);
/// - flip rate = flips ÷ (results − 1); retry rate = retried passes ÷ results;
/// - score = min(1, flip rate + retry rate).
///
/// A case is flaky on a branch when it has at least `minResults` results and either passed on a retry,
/// or its score reaches `threshold` and it flipped `minFlips` times. A break followed by a
/// fix is two flips, so the default `minFlips` of 3 keeps it out; a test broken since a commit flips
/// once. The case's score is that of its flakiest branch.
public struct FlakyPolicy: Sendable, Hashable, Codable {
    public var window: Int
    public var threshold: Double
    public var minResults: Int
    public var minFlips: Int
    /// A run with at least `infraMinCases` executed cases of which more than this share failed is an
    /// infrastructure failure (a dead database, a broken runner) and is not evidence about any test.
    public var infraFailureRatio: Double
    public var infraMinCases: Int

    public static let `default` = FlakyPolicy(
        window: 30, threshold: 0.2, minResults: 5, minFlips: 3, infraFailureRatio: 0.5, infraMinCases: 10)

    /// The longest window a policy may ask for; windows are stored at this length so that a wider
    /// policy takes effect on existing history.
    public static let maxWindow = 100

    public init(window: Int, threshold: Double, minResults: Int, minFlips: Int, infraFailureRatio: Double, infraMinCases: Int) {
        self.window = window
        self.threshold = threshold
        self.minResults = minResults
        self.minFlips = minFlips
        self.infraFailureRatio = infraFailureRatio
        self.infraMinCases = infraMinCases
    }

    /// Problems with JSON pointers under `base` (e.g. "" for a request body holding the policy).
    public func problems(base: String = "") -> [FieldProblem] {
        var out: [FieldProblem] = []
        if !(2...Self.maxWindow).contains(window) {
            out.append(.init(pointer: base + "/window", message: "must be between 2 and \(Self.maxWindow)"))
        }
        if !(threshold > 0 && threshold <= 1) {
            out.append(.init(pointer: base + "/threshold", message: "must be greater than 0 and at most 1"))
        }
        if !(2...max(2, window)).contains(minResults) {
            out.append(.init(pointer: base + "/minResults", message: "must be between 2 and the window (\(window))"))
        }
        // Any Int may arrive here (Int.min included): no arithmetic that could overflow.
        let flipsCeiling = min(max(window, 2), Self.maxWindow) - 1
        if !(1...flipsCeiling).contains(minFlips) {
            out.append(.init(pointer: base + "/minFlips", message: "must be between 1 and window - 1 (\(flipsCeiling))"))
        }
        if !(infraFailureRatio > 0 && infraFailureRatio <= 1) {
            out.append(.init(pointer: base + "/infraFailureRatio", message: "must be greater than 0 and at most 1"))
        }
        if !(1...1_000_000).contains(infraMinCases) {
            out.append(.init(pointer: base + "/infraMinCases", message: "must be between 1 and 1000000"))
        }
        return out
    }

    /// Whether a run's results are evidence at all.
    public func isInfrastructureFailure(executed: Int, failed: Int) -> Bool {
        executed >= infraMinCases && Double(failed) > infraFailureRatio * Double(executed)
    }
}

/// One result as the flakiness window sees it.
public enum FlakyOutcome: Character, Sendable, Hashable {
    case passed = "P"
    case passedOnRetry = "R"
    case failed = "F"

    /// Nil for statuses that say nothing about flakiness (skipped).
    public init?(status: CaseStatus, retried: Bool) {
        switch status {
        case .passed: self = retried ? .passedOnRetry : .passed
        case .failed, .broken: self = .failed
        case .skipped: return nil
        }
    }

    var isPass: Bool { self != .failed }

    /// The outcome's one ASCII byte in a stored window.
    init?(byte: UInt8) {
        switch byte {
        case UInt8(ascii: "P"): self = .passed
        case UInt8(ascii: "R"): self = .passedOnRetry
        case UInt8(ascii: "F"): self = .failed
        default: return nil
        }
    }
}

/// The verdict over one window of outcomes.
public struct FlakyVerdict: Sendable, Hashable {
    public let results: Int
    public let flips: Int
    public let retryPasses: Int
    public let failures: Int
    public let score: Double
    public let isFlaky: Bool
}

/// A branch's stored outcome history: at most `FlakyPolicy.maxWindow` outcome characters, oldest first,
/// and the runs that are evidence (a flip or a pass on retry), newest last, at most `maxEvidence`.
public struct FlakyHistory: Sendable, Hashable {
    public private(set) var outcomes: String
    public private(set) var evidence: [String]
    /// Set when the newest outcome was a flip or a retried pass.
    public private(set) var lastEventWasEvidence = false

    public static let maxEvidence = 10

    public init(outcomes: String = "", evidence: [String] = []) {
        self.outcomes = outcomes
        self.evidence = evidence
    }

    // The window is read and trimmed by its UTF-8 bytes, not its Characters: outcomes are ASCII, and grapheme
    // breaking made the fold and the scoring of a 100-outcome window about 4× dearer (100,000 windows appended
    // and scored: 285–292 ms by Character, 69 ms by byte). A stored window holding anything else has those
    // bytes skipped, as unknown characters were.
    public mutating func append(_ outcome: FlakyOutcome, runID: String) {
        let previous = outcomes.utf8.last.flatMap(FlakyOutcome.init(byte:))
        let flipped = previous.map { $0.isPass != outcome.isPass } ?? false
        outcomes.append(outcome.rawValue)
        let count = outcomes.utf8.count
        if count > FlakyPolicy.maxWindow {
            outcomes = String(decoding: outcomes.utf8.suffix(FlakyPolicy.maxWindow), as: UTF8.self)
        }
        lastEventWasEvidence = flipped || outcome == .passedOnRetry
        if lastEventWasEvidence {
            evidence.append(runID)
            if evidence.count > Self.maxEvidence { evidence.removeFirst(evidence.count - Self.maxEvidence) }
        }
    }

    public func verdict(_ policy: FlakyPolicy) -> FlakyVerdict {
        // One pass, no array: scored for every case of every run a roll-up folds.
        var flips = 0
        var retries = 0
        var failures = 0
        var n = 0
        var previous: FlakyOutcome?
        for byte in outcomes.utf8.suffix(policy.window) {
            guard let outcome = FlakyOutcome(byte: byte) else { continue }
            if outcome == .passedOnRetry { retries += 1 }
            if outcome == .failed { failures += 1 }
            if let previous, previous.isPass != outcome.isPass { flips += 1 }
            previous = outcome
            n += 1
        }
        let flipRate = n > 1 ? Double(flips) / Double(n - 1) : 0
        let retryRate = n > 0 ? Double(retries) / Double(n) : 0
        let score = min(1, flipRate + retryRate)
        // A pass on a retry is the test failing and passing on the same code in the same run: flakiness by
        // definition, whatever the score. Flips alone need the score and `minFlips`, which keep a break and
        // its fix (two flips) and a test broken since a commit (one) out.
        let flaky = n >= policy.minResults && (retries > 0 || (score >= policy.threshold && flips >= policy.minFlips))
        return FlakyVerdict(results: n, flips: flips, retryPasses: retries, failures: failures, score: score, isFlaky: flaky)
    }
}
