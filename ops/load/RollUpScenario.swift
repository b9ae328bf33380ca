import AsyncHTTPClient
import Foundation
import Logging
import PostgresNIO
import Storage

/// What one big run costs after its finalize, and what a first push costs: for each size a new
/// project gets a first push (every case new to the inventory) and a later push of the same size;
/// for each push the finalize (client-side) and its roll-up (begun → done, from the job's timestamps
/// on the server) are timed, one at a time on a quiet server. Then the server's memory: peak above
/// idle, and resident a minute after the last push (the allocator must give memory back).
struct RollUpScenario {
    let sizes: [Int]
    let settleSeconds = 60.0

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say("\n## Roll-up cost and first pushes: runs of \(sizes.map { "\($0 / 1000)k" }.joined(separator: ", ")) cases")
        try await KaizenProcess.with(environment, name: "rollups", settings: ["KAIZEN_FINALIZE_QUOTA": "100000"]) { server in
            try await measure(server, environment, findings)
        }
    }

    func measure(_ server: KaizenProcess, _ environment: LoadEnvironment, _ findings: Findings) async throws {
        let logger = environment.logger
        let tenants = try await Tenants.open(server, logger: logger)
        defer { tenants.close() }
        let database = tenants.cluster.servers[0]
        let client = makeLoadClient()
        defer { Task { try? await client.shutdown() } }
        let token = try await tenants.make("rollups").token
        let caller = Caller(client: client, base: server.tlsURL, token: token)
        let rssIdle = server.memory.rss

        findings.say(
            "\n| cases | push | document | finalize | roll-up | roll-up ÷ finalize | RSS above idle: before the push / peak in finalize / peak in roll-up |")
        findings.say("|---:|---|---:|---:|---:|---:|---:|")
        // Each phase's own peak (VmHWM restarted before it), so the figure says which phase needs the memory.
        var peak = 0
        var firstOverLater: [(Int, Double)] = []
        for size in sizes {
            let project = "s\(size / 1000)k"
            let created = try await caller.post("/v1/projects", json: ["slug": project, "name": project])
            guard created.status == 201 else { throw HarnessError("project \(project): \(created.status) \(created.text)") }
            // No steps: the document is the cases themselves (about 130 bytes each).
            var generator = PipelineGenerator(project: project, cases: size, seed: UInt64(size), stepsPerCase: 0)
            var finalizes: [Double] = []
            for push in ["first", "later", "later"] {
                let run = generator.next()
                let megabytesPushed = Double(run.documentTail.count) / 1_048_576
                let before = server.memory.rss
                server.resetPeak()
                let (f, _, pushed, problems) = try await IngestScenario.pipeline(caller, [run])
                let finalizePeak = server.memory.peak
                server.resetPeak()
                for problem in problems { findings.check(false, problem) }
                guard let runID = pushed.first?.runID else { throw HarnessError("\(project): the push failed") }
                let finalize = Double(f.latency.maxRecorded) / 1e6
                let rollUp = try await Self.rollUpSeconds(runID: runID, database, logger: logger)
                let rollUpPeak = server.memory.peak
                peak = max(peak, finalizePeak, rollUpPeak)
                finalizes.append(finalize)
                findings.say(
                    String(
                        format: "| %d | %@ | %.1f MB | %.2f s | %.2f s | %.2f | %@ / %@ / %@ |", size, push, megabytesPushed, finalize,
                        rollUp, rollUp / finalize, megabytes(before - rssIdle), megabytes(finalizePeak - rssIdle),
                        megabytes(rollUpPeak - rssIdle)))
                if push != "first" {
                    findings.check(
                        rollUp <= finalize,
                        String(format: "rollups: the roll-up of a later %d-case run took %.2f s, its finalize %.2f s", size, rollUp, finalize))
                }
            }
            firstOverLater.append((size, finalizes[0] / ((finalizes[1] + finalizes[2]) / 2)))
        }
        for (size, ratio) in firstOverLater {
            findings.say(String(format: "- first push of %d new cases = %.2f× a later push of the same size (goal ≤ 1.5×)", size, ratio))
            findings.check(ratio <= 1.5, String(format: "rollups: a first push of %d cases cost %.2f× a later one", size, ratio))
        }
        peak = max(peak, server.memory.peak)
        try await Task.sleep(for: .seconds(settleSeconds))
        let settled = server.memory.rss
        findings.say(
            "- server RSS: \(megabytes(rssIdle)) idle, peak \(megabytes(peak)) (\(megabytes(peak - rssIdle)) above idle; goal ≤ 150 MB above), "
                + "\(megabytes(settled)) \(Int(settleSeconds)) s after the last push (goal ≤ 1.5× idle)")
        findings.check(peak - rssIdle <= 150 << 20, "rollups: peak RSS \(megabytes(peak - rssIdle)) above idle")
        findings.check(Double(settled) <= 1.5 * Double(rssIdle), "rollups: RSS \(megabytes(settled)) a minute after, idle \(megabytes(rssIdle))")
    }

    /// Waits for the run's roll-up and returns how long it ran (begun → done), by the server's clock.
    static func rollUpSeconds(runID: String, _ database: PhysicalServer, logger: Logger) async throws -> Double {
        let started = now()
        while now() - started < 600 {
            let seconds = try await database.run { connection -> Double? in
                for try await value in try await connection.query(
                    """
                    SELECT extract(epoch FROM updated_at - started_at)::float8 FROM jobs
                    WHERE kind = 'run.rollup' AND state = 'done' AND payload->>'runId' = \(runID)
                    """, logger: logger
                ).decode(Double.self) {
                    return value
                }
                return nil
            }
            if let seconds { return seconds }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("the roll-up of \(runID) did not finish within 600 s")
    }
}
