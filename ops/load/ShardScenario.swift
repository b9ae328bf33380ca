import AsyncHTTPClient
import Foundation
import Logging
import PostgresNIO
import Storage

/// A build split over parallel jobs: `shards` parts of `perShard` cases finalizing at once through two
/// workspace tokens, against the same cases pushed as one document to a twin project with the same history.
/// The sharded figure is the wall time from the first part sent to the last answered (the one that closed the
/// run); the whole figure is that one finalize. Both are measured with the earlier runs' roll-ups done. Each round also checks the union: one run closed once, the
/// regression the generator expects, every case exactly once.
struct ShardScenario {
    let shards: Int
    let perShard: Int
    let rounds: Int

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        let total = shards * perShard
        findings.say("\n## Sharded runs: \(shards) shards × \(perShard) cases at once vs the same \(total) cases as one document")
        try await KaizenProcess.with(environment, name: "shards", settings: ["KAIZEN_FINALIZE_QUOTA": "100000"]) { server in
            try await measure(server, environment, findings)
        }
    }

    func measure(_ server: KaizenProcess, _ environment: LoadEnvironment, _ findings: Findings) async throws {
        let tenants = try await Tenants.open(server, logger: environment.logger)
        defer { tenants.close() }
        let client = makeLoadClient()
        defer { Task { try? await client.shutdown() } }
        let (workspace, token) = try await tenants.make("shards")
        let admin = Caller(client: client, base: server.tlsURL, token: token)
        let minted = try await admin.post(
            "/v1/workspaces/\(workspace)/tokens", json: ["name": "second", "class": "workspace", "role": "member"])
        guard minted.status == 201, let second = minted.object["secret"] as? String else {
            throw HarnessError("second token: \(minted.status) \(minted.text)")
        }
        let callers = [admin, Caller(client: client, base: server.tlsURL, token: second)]
        for project in ["whole", "sharded"] {
            let created = try await admin.post("/v1/projects", json: ["slug": project, "name": project])
            guard created.status == 201 else { throw HarnessError("project \(project): \(created.status) \(created.text)") }
        }
        // The same history for both projects; the first push of each fills its inventory and is not measured.
        let total = shards * perShard
        var generator = PipelineGenerator(project: "whole", cases: total, seed: 64, stepsPerCase: 0)
        findings.say("\n| round | one document | \(shards) shards at once | shards ÷ document | regression (new / fixed / still) |")
        findings.say("|---:|---:|---:|---:|---|")
        var ratios: [Double] = []
        var closeShares: [(Double, Double)] = []
        let database = tenants.cluster.servers[0]
        for round in 0...rounds {
            let run = generator.next()
            // Each push on a quiet server: the previous round's roll-ups (seconds each at this size) done first.
            try await Self.drainRollUps(database, logger: environment.logger)
            let whole = Self.document(project: "whole", id: "whole-\(round)", statuses: run.statuses, range: 0..<total, shard: nil)
            let wholeReply = try await admin.send(.POST, "/v1/ingest/kensho/finalize", body: whole)
            guard wholeReply.status == 200 else { throw HarnessError("whole push: \(wholeReply.status) \(wholeReply.text)") }
            let wholeSeconds = Double(wholeReply.micros) / 1e6
            let parts = (0..<shards).map { k in
                Self.document(
                    project: "sharded", id: "sharded-\(round)", statuses: run.statuses, range: (k * perShard)..<((k + 1) * perShard),
                    shard: (k, shards))
            }
            try await Self.drainRollUps(database, logger: environment.logger)
            let started = DispatchTime.now().uptimeNanoseconds
            let timed = try await withThrowingTaskGroup(of: (Reply, Double).self) { group in
                for (k, part) in parts.enumerated() {
                    let caller = callers[k % 2]
                    group.addTask {
                        let reply = try await caller.send(.POST, "/v1/ingest/kensho/finalize", body: part)
                        return (reply, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
                    }
                }
                var out: [(Reply, Double)] = []
                for try await reply in group { out.append(reply) }
                return out
            }
            let replies = timed.map(\.0)
            let shardedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            // Where the time goes: the last part stored (its answer says open) and the close after it.
            let lastOpen = timed.filter { $0.0.object["status"] as? String == "open" }.map(\.1).max() ?? 0
            closeShares.append((lastOpen, shardedSeconds - lastOpen))
            for reply in replies where reply.status != 200 { findings.check(false, "shards: a part answered \(reply.status) \(reply.text)") }
            let closers = replies.filter { $0.object["status"] as? String == "closed" }
            findings.check(closers.count == 1, "shards: round \(round) was closed by \(closers.count) finalizes, not one")
            let runIDs = Set(replies.compactMap { $0.object["internalRunId"] as? String })
            findings.check(runIDs.count == 1, "shards: round \(round) made \(runIDs.count) runs")
            let regression = closers.first?.object["regression"] as? [String: Any] ?? [:]
            let wholeRegression = wholeReply.object["regression"] as? [String: Any] ?? [:]
            let e = run.expected
            let figures = [regression["newFailures"] as? Int, regression["fixed"] as? Int, regression["stillFailing"] as? Int]
            if round > 0 {
                findings.check(
                    figures == [e.newFailures, e.fixed, e.stillFailing],
                    "shards: round \(round) regression \(figures), expected \([e.newFailures, e.fixed, e.stillFailing])")
                findings.check(
                    NSDictionary(dictionary: regression.filter { $0.key != "baseline" })
                        == NSDictionary(dictionary: wholeRegression.filter { $0.key != "baseline" }),
                    "shards: round \(round) regression differs from the whole document's")
                let totals = closers.first?.object["totals"] as? [String: Int] ?? [:]
                let counted = (totals["passed"] ?? 0) + (totals["failed"] ?? 0) + (totals["skipped"] ?? 0) + (totals["broken"] ?? 0)
                findings.check(counted == total, "shards: round \(round) assembled \(counted) cases, not \(total)")
                ratios.append(shardedSeconds / wholeSeconds)
            }
            findings.say(
                String(
                    format: "| %@ | %.2f s | %.2f s | %@ | %d / %d / %d |", round == 0 ? "first (inventory)" : "\(round)", wholeSeconds,
                    shardedSeconds, round == 0 ? "—" : String(format: "%.2f", shardedSeconds / wholeSeconds),
                    figures[0] ?? -1, figures[1] ?? -1, figures[2] ?? -1))
        }
        findings.say(
            "- parts stored by " + closeShares.map { String(format: "%.2f s", $0.0) }.joined(separator: ", ")
                + "; the close after them took " + closeShares.map { String(format: "%.2f s", $0.1) }.joined(separator: ", "))
        let sorted = ratios.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        findings.say(
            String(
                format: "- assembling %d cases from %d shards costs %.2f–%.2f× one document (median %.2f; goal ≤ 1.5×)", total, shards,
                sorted.first ?? 0, sorted.last ?? 0, median))
        findings.check(median <= 1.5, String(format: "shards: assembling cost %.2f× one document (median)", median))
    }

    static func drainRollUps(_ database: PhysicalServer, logger: Logger) async throws {
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            let pending = try await database.run { connection -> Int in
                for try await n in try await connection.query(
                    "SELECT count(*)::int FROM jobs WHERE kind = 'run.rollup' AND state IN ('queued', 'running')", logger: logger
                ).decode(Int.self) {
                    return n
                }
                return 0
            }
            if pending == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("roll-ups did not drain within 600 s")
    }

    /// A kensho/v1 document of the cases in `range` (the generator's case format, without steps or attachments).
    static func document(project: String, id: String, statuses: [Status], range: Range<Int>, shard: (Int, Int)?) -> Data {
        var passed = 0, failed = 0, skipped = 0
        for i in range {
            switch statuses[i] {
            case .passed: passed += 1
            case .failed: failed += 1
            case .skipped: skipped += 1
            }
        }
        var json = "{"
        json.reserveCapacity(range.count * 260)
        json += #""schemaVersion":"kensho/v1","project":{"slug":"\#(project)"},"externalRunId":"\#(id)","branch":"main","#
        json += #""commit":"\#(id)","startedAt":"2026-11-22T10:00:00Z","finishedAt":"2026-11-22T10:04:00Z","env":{"os":"linux"},"#
        json += #""totals":{"passed":\#(passed),"failed":\#(failed),"skipped":\#(skipped),"broken":0,"flaky":0},"#
        if let (index, total) = shard { json += #""shard":{"index":\#(index),"total":\#(total)},"# }
        json += #""cases":["#
        for i in range {
            if i > range.lowerBound { json += "," }
            let status = statuses[i]
            json += #"{"name":"test_\#(i)","suite":"Suite\#(i % 40)","file":"Tests/Suite\#(i % 40).swift","status":"\#(status.rawValue)","durationMs":\#(i % 97 + 1)"#
            json += #","labels":{"owner":"team-\#(i % 6)"}"#
            if status == .failed {
                json += #","error":{"type":"AssertionError","message":"expected \#(i) to equal \#(i + 1)","trace":"at Suite\#(i % 40).test_\#(i)"}"#
            }
            json += "}"
        }
        json += "]}"
        return Data(json.utf8)
    }
}
