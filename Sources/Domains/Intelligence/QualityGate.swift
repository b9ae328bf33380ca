import Foundation

/// The rules a project's quality gate can hold.
public enum GateRuleName: String, Sendable, CaseIterable, Codable {
    /// Failing (failed or broken) cases, quarantined ones aside, at most `limit`.
    case maxFailures
    /// Cases failing now and not in the baseline (the regression's `newFailures`), quarantined aside.
    case maxNewFailures
    /// passed ÷ (passed + failing) of the cases not quarantined, at least `limit` (0…1).
    case minPassRate
    /// Cases that ran (not skipped), quarantined ones included, at least `limit`: a suite that silently
    /// shrank fails.
    case minTestsCount
    /// The run's wall time (finishedAt − startedAt, else the sum of its cases' durations), at most `limit`.
    case maxDurationMs
    /// Cases that passed only on a retry in this run and that the project did not already call flaky.
    case maxNewFlaky
    /// Every suite in `suites` present in the run with no failing case that is not quarantined.
    case requiredSuites

    var takesLimit: Bool { self != .requiredSuites }
}

/// One rule of a gate, optionally limited to branches by glob (`main`, `release/*`).
public struct GateRule: Sendable, Hashable, Codable {
    public var rule: GateRuleName
    public var limit: Double?
    public var suites: [String]?
    /// Globs (`*` any run of characters, `?` one); nil or empty: every branch.
    public var branches: [String]?

    public init(rule: GateRuleName, limit: Double? = nil, suites: [String]? = nil, branches: [String]? = nil) {
        self.rule = rule
        self.limit = limit
        self.suites = suites
        self.branches = branches
    }

    public func applies(toBranch branch: String) -> Bool {
        guard let branches, !branches.isEmpty else { return true }
        return branches.contains { Glob.matches($0, branch) }
    }
}

/// A project's quality gate: evaluated inside every finalize, on the same data as the regression.
public struct QualityGate: Sendable, Hashable, Codable {
    public var rules: [GateRule]

    public static let maxRules = 50
    public static let maxBranches = 20
    public static let maxSuites = 100
    public static let maxTextLength = 256

    public init(rules: [GateRule]) { self.rules = rules }

    /// What a request body says, before it is known to be a gate: names as sent, so an unknown one is
    /// reported with its pointer rather than refused by the decoder.
    public struct Draft: Sendable {
        public struct Rule: Sendable {
            public var rule: String
            public var limit: Double?
            public var suites: [String]?
            public var branches: [String]?
            public init(rule: String, limit: Double?, suites: [String]?, branches: [String]?) {
                self.rule = rule
                self.limit = limit
                self.suites = suites
                self.branches = branches
            }
        }
        public var rules: [Rule]
        public init(rules: [Rule]) { self.rules = rules }
    }

    /// The gate a draft describes, or every problem with its JSON pointer.
    public static func validate(_ draft: Draft) -> Result<QualityGate, DomainError> {
        var problems: [FieldProblem] = []
        if draft.rules.count > maxRules {
            problems.append(.init(pointer: "/rules", message: "has \(draft.rules.count) rules; at most \(maxRules) are accepted"))
            return .failure(.validation(problems))
        }
        var rules: [GateRule] = []
        for (index, item) in draft.rules.enumerated() {
            let base = "/rules/\(index)"
            guard let name = GateRuleName(rawValue: item.rule) else {
                let known = GateRuleName.allCases.map(\.rawValue).joined(separator: ", ")
                problems.append(.init(pointer: base + "/rule", message: "is not a rule Kaizen knows; one of: \(known)"))
                continue
            }
            problems += limitProblems(name, item.limit, base: base)
            if name == .requiredSuites {
                if let suites = item.suites, !suites.isEmpty {
                    if suites.count > maxSuites {
                        problems.append(.init(pointer: base + "/suites", message: "has \(suites.count) suites; at most \(maxSuites)"))
                    }
                    for (i, suite) in suites.enumerated() where suite.isEmpty || suite.count > maxTextLength {
                        problems.append(.init(pointer: base + "/suites/\(i)", message: "must be 1 to \(maxTextLength) characters"))
                    }
                } else {
                    problems.append(.init(pointer: base + "/suites", message: "lists the suites that must be present and passing; at least one"))
                }
            } else if item.suites != nil {
                problems.append(.init(pointer: base + "/suites", message: "applies to requiredSuites only"))
            }
            if let branches = item.branches {
                if branches.count > maxBranches {
                    problems.append(.init(pointer: base + "/branches", message: "has \(branches.count) globs; at most \(maxBranches)"))
                }
                for (i, glob) in branches.enumerated() where glob.isEmpty || glob.count > maxTextLength {
                    problems.append(.init(pointer: base + "/branches/\(i)", message: "must be 1 to \(maxTextLength) characters"))
                }
            }
            rules.append(GateRule(rule: name, limit: item.limit, suites: item.suites, branches: item.branches))
        }
        return problems.isEmpty ? .success(QualityGate(rules: rules)) : .failure(.validation(problems))
    }

    static func limitProblems(_ name: GateRuleName, _ limit: Double?, base: String) -> [FieldProblem] {
        let pointer = base + "/limit"
        guard name.takesLimit else {
            return limit == nil ? [] : [.init(pointer: pointer, message: "requiredSuites takes suites, not a limit")]
        }
        guard let limit else { return [.init(pointer: pointer, message: "is required for \(name.rawValue)")] }
        guard limit.isFinite else { return [.init(pointer: pointer, message: "must be a finite number")] }
        switch name {
        case .minPassRate:
            return (0...1).contains(limit) ? [] : [.init(pointer: pointer, message: "is a pass rate: between 0 and 1")]
        default:
            if limit < 0 || limit != limit.rounded() || limit > 1e12 {
                return [.init(pointer: pointer, message: "must be a whole number from 0 to 1000000000000")]
            }
            return []
        }
    }
}

/// The gate's verdict on one run.
public struct GateVerdict: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Codable {
        case passed, failed
        /// The project has no gate, or none of its rules applies to the run's branch.
        case none
    }

    public struct RuleOutcome: Sendable, Hashable, Codable {
        public var rule: GateRuleName
        public var limit: Double?
        public var suites: [String]?
        public var actual: Double
        public var passed: Bool
        /// What made a rule fail, for people (the suites missing or failing).
        public var detail: String?
    }

    /// A failing case the gate did not count, and why.
    public struct Forgiven: Sendable, Hashable, Codable {
        public var key: String
        public var name: String
        public var status: CaseStatus
        public var reason: String
    }

    public var status: Status
    public var rules: [RuleOutcome]
    public var forgiven: [Forgiven]

    public static let none = GateVerdict(status: .none, rules: [], forgiven: [])
    /// At most this many forgiven failures are listed (the count is `forgivenCount`).
    public static let maxListedForgiven = 100
    public var forgivenCount: Int = 0

    public init(status: Status, rules: [RuleOutcome], forgiven: [Forgiven], forgivenCount: Int? = nil) {
        self.status = status
        self.rules = rules
        self.forgiven = forgiven
        self.forgivenCount = forgivenCount ?? forgiven.count
    }

    public var failedRules: [RuleOutcome] { rules.filter { !$0.passed } }

    /// A rule's limit or figure as people read it: `3`, not `3.0`; `0.95` as it is.
    public static func figure(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// What the gate reads besides the run: which of its cases are quarantined (by key, with the reason)
/// and which the project already calls flaky.
public struct GateContext: Sendable {
    public var quarantined: [String: String]
    public var knownFlaky: Set<String>

    public init(quarantined: [String: String] = [:], knownFlaky: Set<String> = []) {
        self.quarantined = quarantined
        self.knownFlaky = knownFlaky
    }
}

extension QualityGate {
    /// The verdict on `run`, whose cases are classified by `buckets` (the regression's, in order).
    /// Quarantined failures are listed as forgiven whether or not the project has a gate.
    public static func evaluate(
        _ gate: QualityGate?, run: ValidatedRun, buckets: [RegressionBucket?], context: GateContext
    ) -> GateVerdict {
        evaluate(
            gate, branch: run.branch, startedAt: run.startedAt, finishedAt: run.finishedAt, cases: run.cases, buckets: buckets,
            context: context)
    }

    /// The verdict on a run of `branch` whose cases are `cases` (a whole document's, or a sharded run's as assembled).
    public static func evaluate<Cases: Collection>(
        _ gate: QualityGate?, branch: String, startedAt: Date?, finishedAt: Date?, cases: Cases,
        buckets: [RegressionBucket?], context: GateContext
    ) -> GateVerdict where Cases.Element: GateCase {
        var passed = 0, failing = 0, ran = 0, newFailures = 0, newFlaky = 0
        var forgiven: [GateVerdict.Forgiven] = []
        var forgivenCount = 0
        var suitesSeen: Set<String> = []
        var suitesFailing: Set<String> = []
        for (index, item) in cases.enumerated() {
            if item.status != .skipped { ran += 1 }
            if let suite = item.suite { suitesSeen.insert(suite) }
            if let reason = context.quarantined[item.key] {
                if item.status.isFailing {
                    forgivenCount += 1
                    if forgiven.count < GateVerdict.maxListedForgiven {
                        forgiven.append(.init(key: item.key, name: item.name, status: item.status, reason: reason))
                    }
                }
                continue
            }
            switch item.status {
            case .passed: passed += 1
            case .failed, .broken:
                failing += 1
                if let suite = item.suite { suitesFailing.insert(suite) }
            case .skipped: break
            }
            if index < buckets.count, buckets[index] == .newFailure { newFailures += 1 }
            if item.flaky && item.status == .passed && !context.knownFlaky.contains(item.key) { newFlaky += 1 }
        }
        let applicable = (gate?.rules ?? []).filter { $0.applies(toBranch: branch) }
        guard !applicable.isEmpty else {
            return GateVerdict(status: .none, rules: [], forgiven: forgiven, forgivenCount: forgivenCount)
        }
        let duration: Double = {
            if let start = startedAt, let end = finishedAt, end >= start {
                return (end.timeIntervalSince(start) * 1000).rounded()
            }
            return Double(cases.reduce(Int64(0)) { $0 &+ max(0, $1.durationMs) })
        }()
        var outcomes: [GateVerdict.RuleOutcome] = []
        for rule in applicable {
            let limit = rule.limit ?? 0
            var outcome = GateVerdict.RuleOutcome(rule: rule.rule, limit: rule.limit, suites: rule.suites, actual: 0, passed: true)
            switch rule.rule {
            case .maxFailures: outcome.actual = Double(failing); outcome.passed = outcome.actual <= limit
            case .maxNewFailures: outcome.actual = Double(newFailures); outcome.passed = outcome.actual <= limit
            case .maxNewFlaky: outcome.actual = Double(newFlaky); outcome.passed = outcome.actual <= limit
            case .minTestsCount: outcome.actual = Double(ran); outcome.passed = outcome.actual >= limit
            case .maxDurationMs: outcome.actual = duration; outcome.passed = outcome.actual <= limit
            case .minPassRate:
                // Nothing executed counts as a pass rate of 0: a gate asking for a rate wants tests.
                let executed = passed + failing
                outcome.actual = executed == 0 ? 0 : (Double(passed) / Double(executed) * 10_000).rounded() / 10_000
                outcome.passed = outcome.actual >= limit
            case .requiredSuites:
                let required = rule.suites ?? []
                let missing = required.filter { !suitesSeen.contains($0) }
                let broken = required.filter { suitesSeen.contains($0) && suitesFailing.contains($0) }
                outcome.actual = Double(missing.count + broken.count)
                outcome.passed = outcome.actual == 0
                var parts: [String] = []
                if !missing.isEmpty { parts.append("missing: " + missing.joined(separator: ", ")) }
                if !broken.isEmpty { parts.append("failing: " + broken.joined(separator: ", ")) }
                outcome.detail = parts.isEmpty ? nil : parts.joined(separator: "; ")
            }
            outcomes.append(outcome)
        }
        let status: GateVerdict.Status = outcomes.allSatisfy(\.passed) ? .passed : .failed
        return GateVerdict(status: status, rules: outcomes, forgiven: forgiven, forgivenCount: forgivenCount)
    }
}

/// What the gate reads of a case.
public protocol GateCase {
    var key: String { get }
    var name: String { get }
    var suite: String? { get }
    var status: CaseStatus { get }
    var flaky: Bool { get }
    var durationMs: Int64 { get }
}

extension ValidatedCase: GateCase {}

/// Branch globs: `*` any run of characters (slashes included), `?` exactly one; the rest literal.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        // Iterative matching with one backtrack point: linear in practice, never exponential.
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
