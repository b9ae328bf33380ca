import Foundation
import Testing

@testable import Domains

/// The pure parts of sharded runs: the `shard` field's parsing and validation, and the assembly of the
/// shards' results into one result per case.
@Suite struct ShardAssemblyTests {
    func result(_ ordinal: Int, _ caseID: String, _ status: CaseStatus, attempts: Int = 1, flaky: Bool = false) -> ShardedResult {
        ShardedResult(
            ordinal: ordinal, caseID: caseID, key: "k-" + caseID, name: caseID, suite: "S", status: status, durationMs: 5,
            attempts: attempts, flaky: flaky)
    }

    @Test func aCaseReportedTwiceIsARetryOfItself() {
        let assembly = ShardAssembly.assemble([
            result(0, "a", .passed), result(1, "b", .failed), result(2, "c", .passed),
            // Later shards: b passes (flaky in the run), c fails after passing (final: failed, not flaky).
            result(3, "b", .passed), result(4, "c", .failed, attempts: 2), result(5, "d", .skipped),
        ])
        #expect(assembly.results.map(\.caseID) == ["a", "b", "c", "d"])
        #expect(assembly.results.map(\.ordinal) == [0, 3, 4, 5])
        #expect(assembly.superseded == [1, 2])
        let b = assembly.results[1], c = assembly.results[2]
        #expect(b.status == .passed && b.flaky && b.attempts == 2)
        #expect(c.status == .failed && !c.flaky && c.attempts == 3)
        #expect(assembly.amended.map(\.ordinal) == [3, 4])
        #expect(assembly.totals == RunTotals(passed: 2, failed: 1, skipped: 1, broken: 0, flaky: 1))
    }

    @Test func withoutRepeatsNothingChanges() {
        let rows = (0..<50).map { result($0, "c\($0)", $0 % 5 == 0 ? .failed : .passed) }
        let assembly = ShardAssembly.assemble(rows.shuffled())
        #expect(assembly.results == rows && assembly.superseded.isEmpty && assembly.amended.isEmpty)
        #expect(assembly.totals.failed == 10 && assembly.totals.passed == 40)
    }

    @Test func assemblyIsTheSameWhateverTheReadOrder() {
        var rng = SystemRandomNumberGenerator()
        let rows = (0..<200).map { result($0, "c\(Int.random(in: 0..<60, using: &rng))", [.passed, .failed, .broken, .skipped].randomElement(using: &rng)!) }
        let once = ShardAssembly.assemble(rows)
        #expect(ShardAssembly.assemble(rows.reversed()) == once)
        #expect(Set(once.results.map(\.caseID)).count == once.results.count)
        #expect(once.results.count + once.superseded.count == rows.count)
        #expect(once.totals.total == once.results.count)
    }

    @Test func theShardFieldIsParsedAndValidated() throws {
        func validate(_ shard: String) throws -> KenshoValidator.Outcome {
            let json = #"{"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"b1","branch":"main","#
                + #""totals":{"passed":0,"failed":0,"skipped":0,"broken":0},"cases":[],"shard":"# + shard + "}"
            return KenshoValidator().validate(try KenshoJSON.decode(Array(json.utf8)), knownAttachments: [])
        }
        guard case .valid(let run) = try validate(#"{"index":2,"total":8}"#) else {
            Issue.record("a valid shard was refused")
            return
        }
        #expect(run.shard == RunShard(index: 2, total: 8))
        // A run of one shard is a whole run.
        guard case .valid(let whole) = try validate(#"{"index":0,"total":1}"#) else {
            Issue.record("one shard of one was refused")
            return
        }
        #expect(whole.shard == nil)
        let bad: [(String, [String])] = [
            (#"{"index":8,"total":8}"#, ["/shard/index"]), (#"{"index":-1,"total":8}"#, ["/shard/index"]),
            (#"{"index":0,"total":1001}"#, ["/shard/total"]), (#"{"index":0,"total":0}"#, ["/shard/total"]),
            (#"{"total":3}"#, ["/shard/index"]), (#"{"index":1}"#, ["/shard/total"]),
        ]
        for (shard, pointers) in bad {
            guard case .invalid(let problems, _) = try validate(shard) else {
                Issue.record("\(shard) was accepted")
                continue
            }
            #expect(problems.map(\.pointer) == pointers, "\(shard)")
        }
        // The reference decoder reads the same field.
        let reference = try JSONDecoder().decode(KenshoRun.self, from: Data(#"{"shard":{"index":1,"total":2}}"#.utf8))
        #expect(reference.shard == KenshoRun.Shard(index: 1, total: 2))
        #expect(try KenshoJSON.decode(Array(#"{"shard":{"index":1,"total":2}}"#.utf8)).shard == reference.shard)
    }
}
