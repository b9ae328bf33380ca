import Crypto
import Foundation

/// Checks a kensho/v1 document and reports every problem (up to `maxProblems`) as a JSON pointer.
public struct KenshoValidator: Sendable {
    public struct Limits: Sendable {
        public var maxCases = 200_000
        public var maxStepsPerCase = 10_000
        public var maxStepDepth = 64
        public var maxNameLength = 2_000
        public var maxMessageLength = 64 * 1024
        public var maxTraceLength = 1024 * 1024
        public var maxProblems = 100
        /// The longest duration a case or step may report: 30 days. Far beyond any test, and small
        /// enough that sums over a run and over a project's history stay well inside 64 bits.
        public var maxDurationMs: Double = 30 * 24 * 3600 * 1000

        public init() {}
    }

    public static let schemaVersion = "kensho/v1"

    public let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public enum Outcome: Sendable {
        case valid(ValidatedRun)
        /// Problems, and the totals computed from the cases (for the 422's details).
        case invalid([FieldProblem], computedTotals: RunTotals?)
    }

    public func validate(_ run: KenshoRun, knownAttachments: Set<String>) -> Outcome {
        var problems = Problems(cap: limits.maxProblems)

        if run.schemaVersion != Self.schemaVersion {
            problems.add("/schemaVersion", run.schemaVersion == nil ? "is required" : "must be \"\(Self.schemaVersion)\"")
        }
        let slug = run.project?.slug ?? ""
        if run.project?.slug == nil {
            problems.add("/project/slug", "is required")
        } else if let problem = Slug.problem(slug) {
            problems.add("/project/slug", problem)
        }
        let externalRunId = run.externalRunId ?? ""
        if run.externalRunId == nil {
            problems.add("/externalRunId", "is required")
        } else if externalRunId.isEmpty || externalRunId.unicodeScalars.count > 255 {
            problems.add("/externalRunId", "must be 1–255 characters")
        }
        let branch = run.branch ?? ""
        if run.branch == nil {
            problems.add("/branch", "is required")
        } else if branch.isEmpty || branch.unicodeScalars.count > 255 || branch.contains(where: \.isWhitespace) {
            problems.add("/branch", "must be 1–255 characters without whitespace")
        }
        if let commit = run.commit, commit.unicodeScalars.count > 255 { problems.add("/commit", "must be at most 255 characters") }
        let startedAt = timestamp(run.startedAt, "/startedAt", &problems)
        let finishedAt = timestamp(run.finishedAt, "/finishedAt", &problems)
        if let startedAt, let finishedAt, finishedAt < startedAt {
            problems.add("/finishedAt", "is before startedAt")
        }

        var shard: RunShard?
        if let given = run.shard {
            var ok = true
            if let total = given.total {
                if total < 1 || total > RunShard.maxTotal {
                    problems.add("/shard/total", "must be 1–\(RunShard.maxTotal)")
                    ok = false
                }
            } else {
                problems.add("/shard/total", "is required")
                ok = false
            }
            if let index = given.index {
                if index < 0 {
                    problems.add("/shard/index", "must be 0 or more")
                    ok = false
                } else if let total = given.total, index >= total, total >= 1 {
                    problems.add("/shard/index", "is \(index) but must be below total (\(total)); shards count from 0")
                    ok = false
                }
            } else {
                problems.add("/shard/index", "is required")
                ok = false
            }
            // A run of one shard is a whole run.
            if ok, let index = given.index, let total = given.total, total > 1 { shard = RunShard(index: index, total: total) }
        }

        var cases: [ValidatedCase] = []
        var totals = RunTotals()
        var referenced = Set<String>()
        var keys: [String: Int] = [:]
        if let input = run.cases {
            if input.count > limits.maxCases {
                problems.add("/cases", "has \(input.count) cases; at most \(limits.maxCases) are accepted")
            }
            cases.reserveCapacity(input.count)
            for (index, item) in input.enumerated() {
                guard let valid = validateCase(item, at: "/cases/\(index)", knownAttachments: knownAttachments, &problems)
                else { continue }
                if let first = keys[valid.key] {
                    problems.add(
                        "/cases/\(index)", "has the same case key as /cases/\(first) (\(valid.key)); give one an explicit key")
                    continue
                }
                keys[valid.key] = index
                totals.count(valid.status, flaky: valid.flaky)
                referenced.formUnion(valid.attachments)
                for step in valid.steps { referenced.formUnion(step.attachments) }
                cases.append(valid)
            }
        } else {
            problems.add("/cases", "is required (an empty array is allowed)")
        }

        // Totals must agree with the cases, so a truncated upload cannot pass for a complete run.
        let computed = run.cases == nil ? nil : totals
        if let given = run.totals {
            if let computed, problems.isEmpty {
                let pairs: [(String, Int?, Int)] = [
                    ("passed", given.passed, computed.passed), ("failed", given.failed, computed.failed),
                    ("skipped", given.skipped, computed.skipped), ("broken", given.broken, computed.broken),
                    ("flaky", given.flaky, computed.flaky),
                ]
                for (field, value, expected) in pairs {
                    if let value, value != expected {
                        problems.add("/totals/\(field)", "is \(value) but the cases give \(expected)")
                    } else if value == nil && field != "flaky" {
                        problems.add("/totals/\(field)", "is required")
                    }
                }
            }
        } else {
            problems.add("/totals", "is required")
        }

        if !problems.isEmpty { return .invalid(problems.list, computedTotals: computed) }
        return .valid(
            ValidatedRun(
                projectSlug: slug, externalRunId: externalRunId, branch: branch, commit: run.commit,
                buildURL: run.buildUrl, startedAt: startedAt, finishedAt: finishedAt, env: run.env ?? [:],
                totals: totals, cases: cases, attachmentIDs: referenced, shard: shard))
    }

    func validateCase(_ item: KenshoCase, at path: String, knownAttachments: Set<String>, _ problems: inout Problems)
        -> ValidatedCase?
    {
        let before = problems.count
        let name = item.name ?? ""
        if item.name == nil {
            problems.add("\(path)/name", "is required")
        } else if name.isEmpty || name.unicodeScalars.count > limits.maxNameLength {
            problems.add("\(path)/name", "must be 1–\(limits.maxNameLength) characters")
        }
        let status = self.status(item.status, "\(path)/status", &problems)
        duration(item.durationMs, "\(path)/durationMs", &problems)
        if let key = item.key, key.isEmpty || key.unicodeScalars.count > 512 {
            problems.add("\(path)/key", "must be 1–512 characters")
        }
        var attemptFailed = false
        for (index, attempt) in (item.retries ?? []).enumerated() {
            if let s = self.status(attempt.status, "\(path)/retries/\(index)/status", &problems), s.isFailing {
                attemptFailed = true
            }
        }
        if let error = item.error {
            if (error.message?.unicodeScalars.count ?? 0) > limits.maxMessageLength {
                problems.add("\(path)/error/message", "must be at most \(limits.maxMessageLength) characters")
            }
            if (error.trace?.unicodeScalars.count ?? 0) > limits.maxTraceLength {
                problems.add("\(path)/error/trace", "must be at most \(limits.maxTraceLength) characters")
            }
        }
        for (index, id) in (item.attachments ?? []).enumerated() where !knownAttachments.contains(id) {
            problems.add("\(path)/attachments/\(index)", "refers to attachment '\(id)', which was not declared at init and uploaded")
        }
        var steps: [FlatStep] = []
        flatten(item.steps ?? [], parent: nil, depth: 0, path: { "\(path)/steps" }, into: &steps, knownAttachments, &problems)
        if steps.count > limits.maxStepsPerCase {
            problems.add("\(path)/steps", "has \(steps.count) steps; at most \(limits.maxStepsPerCase) are accepted")
        }
        guard problems.count == before, let status else { return nil }

        let suite = item.suite
        let parameters = item.parameters ?? [:]
        return ValidatedCase(
            key: item.key ?? Self.derivedKey(suite: suite, name: name, parameters: parameters),
            name: name, suite: suite, fullName: item.fullName, file: item.file, status: status,
            durationMs: Self.milliseconds(item.durationMs), attempts: (item.retries?.count ?? 0) + 1,
            flaky: status == .passed && attemptFailed, error: item.error, labels: item.labels ?? [:],
            parameters: parameters, steps: steps, attachments: item.attachments ?? [])
    }

    /// `path` is the steps' JSON pointer, made only when a problem is reported: a valid run's 50,000 steps
    /// built four pointer strings each before.
    func flatten(
        _ input: [KenshoStep], parent: Int?, depth: Int, path: () -> String, into steps: inout [FlatStep],
        _ known: Set<String>, _ problems: inout Problems
    ) {
        guard depth < limits.maxStepDepth else {
            problems.add(path(), "nests deeper than \(limits.maxStepDepth) levels")
            return
        }
        for (index, step) in input.enumerated() {
            func at() -> String { "\(path())/\(index)" }
            if steps.count > limits.maxStepsPerCase { return }
            let name = step.name ?? ""
            if name.isEmpty || name.unicodeScalars.count > limits.maxNameLength {
                problems.add("\(at())/name", step.name == nil ? "is required" : "must be 1–\(limits.maxNameLength) characters")
            }
            let status = self.status(step.status, "\(at())/status", &problems)
            duration(step.durationMs, "\(at())/durationMs", &problems)
            for (i, id) in (step.attachments ?? []).enumerated() where !known.contains(id) {
                problems.add("\(at())/attachments/\(i)", "refers to attachment '\(id)', which was not declared at init and uploaded")
            }
            let ordinal = steps.count
            steps.append(
                FlatStep(
                    ordinal: ordinal, parent: parent, depth: depth, name: name, status: status ?? .broken,
                    durationMs: Self.milliseconds(step.durationMs), attachments: step.attachments ?? []))
            flatten(step.steps ?? [], parent: ordinal, depth: depth + 1, path: { "\(at())/steps" }, into: &steps, known, &problems)
        }
    }

    /// A duration must be a finite number in 0…maxDurationMs; anything else is reported, never converted.
    func duration(_ value: Double?, _ pointer: @autoclosure () -> String, _ problems: inout Problems) {
        guard let value else { return }
        if !value.isFinite || value < 0 || value > limits.maxDurationMs {
            problems.add(pointer(), "must be a number of milliseconds from 0 to \(Int64(limits.maxDurationMs)) (30 days)")
        }
    }

    /// Milliseconds as stored. Only reached for values `duration` accepted; the guard keeps the
    /// conversion total even so (a Double outside Int64's range would trap).
    static func milliseconds(_ value: Double?) -> Int64 {
        guard let value, value.isFinite, value > 0 else { return 0 }
        return Int64(exactly: value.rounded()) ?? (value >= 9.2e18 ? Int64.max : 0)
    }

    func status(_ raw: String?, _ pointer: @autoclosure () -> String, _ problems: inout Problems) -> CaseStatus? {
        guard let raw else {
            problems.add(pointer(), "is required")
            return nil
        }
        guard let status = CaseStatus(rawValue: raw) else {
            problems.add(pointer(), "must be one of passed, failed, skipped, broken (got \"\(raw)\")")
            return nil
        }
        return status
    }

    func timestamp(_ raw: String?, _ pointer: String, _ problems: inout Problems) -> Date? {
        guard let raw else { return nil }
        if let date = try? Date(raw, strategy: .iso8601) { return date }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(raw) { return date }
        problems.add(pointer, "must be an RFC 3339 timestamp such as 2026-04-30T12:00:14Z")
        return nil
    }

    /// `suite::name(k=v,…)` with parameters sorted; long keys are hashed to keep the index small.
    public static func derivedKey(suite: String?, name: String, parameters: [String: String]) -> String {
        var key = (suite.map { $0 + "::" } ?? "") + name
        if !parameters.isEmpty {
            key += "(" + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + ")"
        }
        if key.utf8.count <= 512 { return key }
        return "sha256:" + Hex.string(SHA256.hash(data: Array(key.utf8)))
    }
}

/// Collects problems up to a cap.
struct Problems {
    let cap: Int
    private(set) var list: [FieldProblem] = []
    private(set) var count = 0

    init(cap: Int) { self.cap = cap }

    var isEmpty: Bool { count == 0 }

    mutating func add(_ pointer: String, _ message: String) {
        count += 1
        if list.count < cap { list.append(FieldProblem(pointer: pointer, message: message)) }
    }
}

extension KenshoValidator.Outcome {
    /// The validation error of an invalid outcome: every problem with its pointer, and the totals the cases add
    /// up to (so a client sees at once which counts it got wrong). Nil when the run is valid.
    public var error: DomainError? {
        guard case .invalid(let problems, let computed) = self else { return nil }
        let base = DomainError.validation(problems)
        guard let computed, case .object(var details) = base.details else { return base }
        details["computedTotals"] = [
            "passed": .int(computed.passed), "failed": .int(computed.failed), "skipped": .int(computed.skipped),
            "broken": .int(computed.broken), "flaky": .int(computed.flaky),
        ]
        return DomainError(kind: .validation, code: base.code, message: base.message, details: .object(details))
    }
}
