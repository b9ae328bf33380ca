import Crypto
import Foundation

/// SplitMix64: a small deterministic generator, so every pipeline's history is reproducible.
struct SeededRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
}

enum Status: String {
    case passed, failed, skipped
    var failing: Bool { self == .failed }
}

/// What the server must answer for a run: computed here, independently of Kaizen's code.
struct Expectation: Sendable, Equatable {
    var passed = 0, failed = 0, skipped = 0, flaky = 0
    var newFailures = 0, fixed = 0, stillFailing = 0
}

struct Attachment: Sendable {
    let id: String
    let bytes: Data
    let sha256: String
    init(id: String, bytes: Data) {
        self.id = id
        self.bytes = bytes
        self.sha256 = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}

/// One push: the run document (without `uploadId`, spliced in after init), its attachments and
/// what the server must answer.
struct GeneratedRun: Sendable {
    let project: String
    let externalRunId: String
    let caseCount: Int
    let stepRows: Int
    /// The document minus its opening `{`, so `{"uploadId":"…",` can be prepended.
    let documentTail: Data
    let attachments: [Attachment]
    let expected: Expectation
    /// The final status of each case, for the COPY limit's rows.
    let statuses: [Status]

    func document(uploadId: String) -> Data {
        var data = Data(#"{"uploadId":"\#(uploadId)","#.utf8)
        data.append(documentTail)
        return data
    }
}

/// The history of one simulated CI pipeline: about 10 % of cases failing, a few skipped, a few
/// passing on retry; between runs ~2 % of cases change status, so every regression bucket is non-empty.
struct PipelineGenerator {
    let project: String
    let cases: Int
    let stepsPerCase: Int
    var random: SeededRandom
    var previous: [Status]?
    var runNumber = 0
    let sharedLog: Attachment

    init(project: String, cases: Int, seed: UInt64, stepsPerCase: Int = 3) {
        self.project = project
        self.cases = cases
        self.stepsPerCase = stepsPerCase
        self.random = SeededRandom(state: seed)
        var log = Data("environment of \(project)\n".utf8)
        log.append(contentsOf: (0..<4096).map { (i: Int) -> UInt8 in UInt8(i % 251) })
        self.sharedLog = Attachment(id: "env-log", bytes: log)
    }

    mutating func next() -> GeneratedRun {
        runNumber += 1
        var statuses: [Status]
        if let previous {
            statuses = previous.map { status in
                guard random.chance(0.02) else { return status }
                switch status {
                case .failed: return .passed
                case .passed: return random.chance(0.5) ? .failed : .skipped
                case .skipped: return .passed
                }
            }
        } else {
            statuses = (0..<cases).map { _ in random.chance(0.10) ? .failed : (random.chance(0.02) ? .skipped : .passed) }
        }
        var expected = Expectation()
        var flaky = [Bool](repeating: false, count: cases)
        for (i, status) in statuses.enumerated() {
            switch status {
            case .passed:
                expected.passed += 1
                if random.chance(0.01) {
                    flaky[i] = true
                    expected.flaky += 1
                }
            case .failed: expected.failed += 1
            case .skipped: expected.skipped += 1
            }
            let before = previous?[i]
            if status.failing {
                if before?.failing == true { expected.stillFailing += 1 } else { expected.newFailures += 1 }
            } else if status == .passed && before?.failing == true {
                expected.fixed += 1
            }
        }
        previous = statuses

        var unique: [Attachment] = []
        for n in 0..<2 {
            var bytes = Data("run \(runNumber) of \(project), shot \(n)\n".utf8)
            let pattern: [UInt8] = (0..<(4096 * (n + 1))).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i &* 7 &+ runNumber) }
            bytes.append(contentsOf: pattern)
            unique.append(Attachment(id: "shot-\(n)", bytes: bytes))
        }
        let attachments = [sharedLog] + unique
        let externalRunId = "\(project)-run-\(runNumber)"

        var json = ""
        json.reserveCapacity(cases * 420)
        json += #""schemaVersion":"kensho/v1","project":{"slug":"\#(project)"},"externalRunId":"\#(externalRunId)","#
        json += #""branch":"main","commit":"\#(String(runNumber, radix: 16))","startedAt":"2026-11-22T10:00:00Z","#
        json += #""finishedAt":"2026-11-22T10:04:00Z","env":{"os":"linux","runner":"load"},"#
        json += #""totals":{"passed":\#(expected.passed),"failed":\#(expected.failed),"skipped":\#(expected.skipped),"broken":0,"flaky":\#(expected.flaky)},"#
        json += #""cases":["#
        for i in 0..<cases {
            if i > 0 { json += "," }
            let status = statuses[i]
            json += #"{"name":"test_\#(i)","suite":"Suite\#(i % 40)","file":"Tests/Suite\#(i % 40).swift","status":"\#(status.rawValue)","durationMs":\#(i % 97 + 1)"#
            json += #","labels":{"owner":"team-\#(i % 6)"}"#
            if flaky[i] { json += #","retries":[{"status":"failed"}]"# }
            if status == .failed {
                json += #","error":{"type":"AssertionError","message":"expected \#(i) to equal \#(i + runNumber)","trace":"at Suite\#(i % 40).test_\#(i)"}"#
            }
            if i < attachments.count { json += #","attachments":["\#(attachments[i].id)"]"# }
            if stepsPerCase > 0 { json += #","steps":["# }
            for s in 0..<stepsPerCase {
                if s > 0 { json += "," }
                let stepStatus = status == .failed && s == stepsPerCase - 1 ? "failed" : (status == .skipped ? "skipped" : "passed")
                json += #"{"name":"step \#(s)","status":"\#(stepStatus)","durationMs":1}"#
            }
            json += stepsPerCase > 0 ? "]}" : "}"
        }
        json += "]}"
        return GeneratedRun(
            project: project, externalRunId: externalRunId, caseCount: cases, stepRows: cases * stepsPerCase,
            documentTail: Data(json.utf8), attachments: attachments, expected: expected, statuses: statuses)
    }
}
