import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Scenario 1 and 2: K concurrent CI pipelines across W workspaces push complete runs (init →
/// uploads → finalize) over HTTP/2; every answer is checked against the generator; then raw COPY of
/// the same rows into the same PostgreSQL, with the same concurrency, is the limit.
struct IngestScenario {
    let pipelines: Int
    let workspaces: Int
    let cases: Int
    let runsPerPipeline: Int
    /// Webhooks (`run.finalized`) registered on the first workspace's projects, delivered to a receiver on
    /// loopback while the pipelines push: every delivery counted, its lag after the finalize's answer measured.
    var webhooks: Int = 0
    /// Live streams (`GET /v1/events/stream?kind=run.finalized`) held open on the first workspace while the
    /// pipelines push: each must see every run of that workspace once, in order; their lag is measured.
    var streams: Int = 0

    struct Pushed: Sendable {
        let run: GeneratedRun
        let workspaceToken: String
        let runID: String
        /// When the finalize's answer arrived (seconds since 1970), for the webhook lag.
        var answeredAt: Double = 0
    }

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say(
            "\n## CI ingestion: \(pipelines) pipelines × \(runsPerPipeline) runs of \(cases) cases, \(workspaces) workspaces"
                + (webhooks > 0 ? ", \(webhooks) webhooks on the first workspace" : "")
                + (streams > 0 ? ", \(streams) live streams on the first workspace" : ""))
        var settings = ["KAIZEN_RATE_LIMIT_WORKSPACE": "1000000", "KAIZEN_FINALIZE_QUOTA": "100000"]
        if webhooks > 0 {
            settings["KAIZEN_WEBHOOK_ALLOW_HTTP"] = "true"
            settings["KAIZEN_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
        }
        let server = try await KaizenProcess.start(environment, name: "ingest", settings: settings)
        let tenants = try await Tenants.open(server, logger: environment.logger)
        let client = makeLoadClient()
        defer {
            tenants.close()
        }
        var tokens: [String] = []
        for w in 0..<workspaces { tokens.append(try await tenants.make("load-\(w)").token) }

        // Generate every run before the clock starts: the harness shares the cores with the server.
        var plans: [[GeneratedRun]] = []
        for p in 0..<pipelines {
            var generator = PipelineGenerator(project: "p\(p)", cases: cases, seed: UInt64(p + 1) * 7919)
            plans.append((0..<runsPerPipeline).map { _ in generator.next() })
            let caller = Caller(client: client, base: server.tlsURL, token: tokens[p % workspaces])
            let created = try await caller.post("/v1/projects", json: ["slug": "p\(p)", "name": "Pipeline \(p)"])
            guard created.status == 201 else { throw HarnessError("project p\(p): \(created.status) \(created.text)") }
        }

        // The receiver: answers 204 and logs each delivery's run id and arrival time.
        var receiver: HookReceiver?
        var hooksPerProject: [String: Int] = [:]
        if webhooks > 0 {
            let listening = try HookReceiver.start()
            receiver = listening
            let caller = Caller(client: client, base: server.tlsURL, token: tokens[0])
            let projects = (0..<pipelines).filter { $0 % workspaces == 0 }.map { "p\($0)" }
            for h in 0..<webhooks {
                let project = projects[h % projects.count]
                let created = try await caller.post(
                    "/v1/projects/\(project)/webhooks", json: ["url": "http://127.0.0.1:\(listening.port)/h\(h)", "events": ["run.finalized"]])
                guard created.status == 201 else { throw HarnessError("webhook: \(created.status) \(created.text)") }
                hooksPerProject[project, default: 0] += 1
            }
        }
        defer { receiver?.stop() }
        var watchers: [StreamWatcher] = []
        for _ in 0..<streams {
            watchers.append(try await StreamWatcher.open(client: client, base: server.tlsURL, token: tokens[0]))
        }
        defer { for watcher in watchers { watcher.close() } }

        let rssBefore = server.memory.rss
        let started = now()
        let results = try await withThrowingTaskGroup(of: (Tally, Tally, [Pushed], [String]).self) { group in
            for p in 0..<pipelines {
                let caller = Caller(client: client, base: server.tlsURL, token: tokens[p % workspaces])
                let plan = plans[p]
                group.addTask { try await Self.pipeline(caller, plan) }
            }
            var all: [(Tally, Tally, [Pushed], [String])] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = now() - started
        let memory = server.memory

        var finalize = Tally(), requests = Tally()
        var pushed: [Pushed] = []
        for (f, r, p, problems) in results {
            finalize.merge(f)
            requests.merge(r)
            pushed += p
            for problem in problems { findings.check(false, problem) }
        }
        let totalCases = pushed.reduce(0) { $0 + $1.run.caseCount }
        let kaizenRate = Double(totalCases) / elapsed
        findings.say("- pushed \(pushed.count) runs, \(totalCases) cases in \(String(format: "%.1f", elapsed)) s: "
            + String(format: "%.2f runs/s, %.0f cases/s", Double(pushed.count) / elapsed, kaizenRate))
        findings.say("- finalize latency: \(finalize.percentiles())")
        findings.say("- responses: \(requests.statusLine()); HTTP/2: \(requests.http2) of \(requests.responses) API responses")
        findings.say("- server RSS: \(megabytes(rssBefore)) before, \(megabytes(memory.rss)) after, peak \(megabytes(memory.peak))")
        findings.check(requests.serverErrors == 0, "ingest: \(requests.serverErrors) responses were 5xx")
        findings.check(pushed.count == pipelines * runsPerPipeline, "ingest: \(pushed.count) of \(pipelines * runsPerPipeline) runs pushed")

        // Read every run back: stored once, totals and regression as generated.
        var wrong = 0
        for item in pushed {
            let caller = Caller(client: client, base: server.tlsURL, token: item.workspaceToken)
            let reply = try await caller.get("/v1/runs/\(item.runID)")
            let totals = reply.object["totals"] as? [String: Any] ?? [:]
            let regression = reply.object["regression"] as? [String: Any] ?? [:]
            let e = item.run.expected
            let ok = reply.status == 200 && totals["passed"] as? Int == e.passed && totals["failed"] as? Int == e.failed
                && totals["skipped"] as? Int == e.skipped && totals["flaky"] as? Int == e.flaky
                && regression["newFailures"] as? Int == e.newFailures && regression["fixed"] as? Int == e.fixed
                && regression["stillFailing"] as? Int == e.stillFailing
            if !ok { wrong += 1 }
        }
        for p in 0..<pipelines {
            let caller = Caller(client: client, base: server.tlsURL, token: tokens[p % workspaces])
            let listed = try await caller.get("/v1/projects/p\(p)/runs?limit=200")
            let count = (listed.object["items"] as? [Any])?.count ?? -1
            findings.check(count == runsPerPipeline, "project p\(p) lists \(count) runs, pushed \(runsPerPipeline)")
        }
        findings.check(wrong == 0, "ingest: \(wrong) runs read back with wrong totals or regression")
        if let receiver {
            let expected = pushed.reduce(0) { $0 + (hooksPerProject[$1.run.project] ?? 0) }
            let deadline = now() + 120
            while receiver.deliveries().count < expected && now() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            let arrived = receiver.deliveries()
            let answered = Dictionary(pushed.map { ($0.runID, $0.answeredAt) }, uniquingKeysWith: { a, _ in a })
            let lags = arrived.compactMap { delivery in answered[delivery.runID].map { max(0, delivery.at - $0) } }.sorted()
            func percentile(_ p: Double) -> Double { lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * p))] }
            findings.say(
                String(
                    format: "- webhooks: %d of %d deliveries arrived (each once: %@); lag after the finalize's answer p50 %.2f s, p99 %.2f s, max %.2f s",
                    arrived.count, expected, Set(arrived.map(\.id)).count == arrived.count ? "yes" : "NO", percentile(0.5), percentile(0.99),
                    lags.last ?? 0))
            findings.check(arrived.count == expected, "webhooks: \(arrived.count) of \(expected) deliveries arrived")
            findings.check(Set(arrived.map(\.id)).count == arrived.count, "webhooks: a delivery arrived twice")
        }
        if !watchers.isEmpty {
            let mine = pushed.filter { $0.workspaceToken == tokens[0] }
            let answered = Dictionary(mine.map { ($0.runID, $0.answeredAt) }, uniquingKeysWith: { a, _ in a })
            let deadline = now() + 120
            while watchers.contains(where: { $0.seen().count < mine.count }) && now() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            var lags: [Double] = []
            var complete = 0
            for watcher in watchers {
                let seen = watcher.seen()
                let ids = seen.map(\.runID)
                let positions = seen.map(\.position)
                if Set(ids) == Set(answered.keys) && ids.count == answered.count && positions == positions.sorted() { complete += 1 }
                lags += seen.compactMap { item in answered[item.runID].map { max(0, item.at - $0) } }
            }
            lags.sort()
            func percentile(_ p: Double) -> Double { lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * p))] }
            findings.say(
                String(
                    format: "- live streams: %d of %d saw each of the workspace's %d runs once, in order; lag after the finalize's answer p50 %.3f s, p99 %.3f s, max %.3f s",
                    complete, watchers.count, mine.count, percentile(0.5), percentile(0.99), lags.last ?? 0))
            findings.check(complete == watchers.count, "live streams: \(watchers.count - complete) missed, repeated or reordered a run")
        }
        findings.say("- read back: \(pushed.count - wrong) of \(pushed.count) runs with the generator's totals and regression")
        try await client.shutdown()
        await server.stop()

        // The limit: COPY of the same result and step rows, same server, same concurrency.
        let copyRate = try await copyLimit(environment, runs: pushed.map(\.run))
        findings.say(String(format: "- limit, raw COPY of the same rows into the same PostgreSQL (%d connections): %.0f cases/s", pipelines, copyRate))
        findings.say(String(format: "- **Kaizen ingest = %.0f %% of raw COPY** (goal ≥ 60 %%, issue 13; the roll-ups run alongside)", 100 * kaizenRate / copyRate))
    }

    /// One pipeline: its runs in order, each init → uploads → finalize, checked as it goes.
    static func pipeline(_ caller: Caller, _ plan: [GeneratedRun]) async throws -> (Tally, Tally, [Pushed], [String]) {
        var finalize = Tally(), requests = Tally()
        var pushed: [Pushed] = []
        var problems: [String] = []
        for run in plan {
            let initReply = try await caller.post(
                "/v1/ingest/kensho/init",
                json: [
                    "projectSlug": run.project, "externalRunId": run.externalRunId,
                    "attachments": run.attachments.map {
                        ["id": $0.id, "sha256": $0.sha256, "size": $0.bytes.count, "contentType": "application/octet-stream"]
                    },
                ])
            requests.record(status: initReply.status, version: initReply.version)
            guard initReply.status == 200, let uploadId = initReply.object["uploadId"] as? String else {
                problems.append("init of \(run.externalRunId): \(initReply.status) \(initReply.text)")
                continue
            }
            let already = Set(initReply.object["alreadyExists"] as? [String] ?? [])
            if pushed.count > 0 && !already.contains("env-log") {
                problems.append("\(run.externalRunId): the shared attachment was not deduplicated")
            }
            for target in initReply.object["presigned"] as? [[String: Any]] ?? [] {
                guard let id = target["id"] as? String, let url = target["url"] as? String,
                    let attachment = run.attachments.first(where: { $0.id == id })
                else { continue }
                let upload = try await caller.send(
                    .PUT, url, body: attachment.bytes, contentType: "application/octet-stream",
                    headers: target["fields"] as? [String: String] ?? [:], absolute: true)
                requests.record(status: upload.status, version: upload.version)
                if upload.status != 201 { problems.append("upload \(id) of \(run.externalRunId): \(upload.status)") }
            }
            let reply = try await caller.send(.POST, "/v1/ingest/kensho/finalize", body: run.document(uploadId: uploadId))
            requests.record(status: reply.status, version: reply.version)
            finalize.record(status: reply.status, version: reply.version, micros: reply.micros)
            guard reply.status == 200, let runID = reply.object["internalRunId"] as? String else {
                problems.append("finalize of \(run.externalRunId): \(reply.status) \(reply.text)")
                continue
            }
            let regression = reply.object["regression"] as? [String: Any] ?? [:]
            let e = run.expected
            if regression["newFailures"] as? Int != e.newFailures || regression["fixed"] as? Int != e.fixed
                || regression["stillFailing"] as? Int != e.stillFailing
            {
                problems.append("\(run.externalRunId): regression \(regression), expected new \(e.newFailures) fixed \(e.fixed) still \(e.stillFailing)")
            }
            pushed.append(Pushed(run: run, workspaceToken: caller.token ?? "", runID: runID, answeredAt: Date().timeIntervalSince1970))
        }
        return (finalize, requests, pushed, problems)
    }

    /// Cases per second when the same rows go in with raw COPY (text), one connection per pipeline.
    func copyLimit(_ environment: LoadEnvironment, runs: [GeneratedRun]) async throws -> Double {
        let url = try await environment.database("copylimit")
        let servers = try StorageCluster.makeServers(urls: [url], maxConnectionsPerServer: pipelines + 1, logger: environment.logger)
        let pools = Task { await StorageCluster.runPools(servers) }
        defer { pools.cancel() }
        _ = try await StorageCluster.open(servers: servers, logicalShards: 1, logger: environment.logger)
        let byPipeline = Dictionary(grouping: runs, by: \.project).values.map { $0 }
        // Rows are built before the clock starts: the limit is PostgreSQL's ingest, not our formatting.
        let prepared = byPipeline.map { runs in runs.enumerated().map { Self.copyRows($0.element, runNumber: $0.offset) } }
        let started = now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for rows in prepared {
                group.addTask {
                    for (results, steps) in rows {
                        try await servers[0].transaction { connection in
                            try await connection.copyFrom(
                                table: "case_results",
                                columns: ["workspace_id", "run_id", "ordinal", "case_id", "status", "duration_ms", "attempts",
                                          "flaky", "regression", "error_type", "error_message", "error_trace", "labels",
                                          "parameters", "attachments"],
                                logger: environment.logger
                            ) { try await $0.write(results) }
                            try await connection.copyFrom(
                                table: "case_steps", columns: ["workspace_id", "run_id", "case_ordinal", "steps"],
                                logger: environment.logger
                            ) { try await $0.write(steps) }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = now() - started
        return Double(runs.reduce(0) { $0 + $1.caseCount }) / elapsed
    }

    static func copyRows(_ run: GeneratedRun, runNumber: Int) -> (ByteBuffer, ByteBuffer) {
        var results = ByteBuffer(), steps = ByteBuffer()
        let runID = "\(run.externalRunId)-copy"
        for (i, status) in run.statuses.enumerated() {
            let error = status == .failed ? "AssertionError\texpected \(i) to equal \(i + runNumber)\tat Suite\(i % 40).test_\(i)" : "\\N\t\\N\t\\N"
            results.writeString(
                "ws\t\(runID)\t\(i)\tcase_\(run.project)_\(i)\t\(status.rawValue)\t\(i % 97 + 1)\t1\tf\t\\N\t\(error)\t{\"owner\":\"team-\(i % 6)\"}\t{}\t{}\n")
            // One row per case, its steps as the JSON Kaizen stores (`case_steps`).
            let items = (0..<3).map { s in
                let stepStatus = status == .failed && s == 2 ? "failed" : (status == .skipped ? "skipped" : "passed")
                return "[\(s),null,0,\"step \(s)\",\"\(stepStatus)\",1,[]]"
            }
            steps.writeString("ws\t\(runID)\t\(i)\t[\(items.joined(separator: ","))]\n")
        }
        return (results, steps)
    }
}

/// A webhook receiver on loopback for the load harness (Python's threading HTTP server): answers 204 at once
/// and logs `<run id> <delivery id> <arrival time>`.
struct HookReceiver {
    let pid: pid_t
    let port: Int
    let log: String

    struct Delivery {
        let runID: String
        let id: String
        let at: Double
    }

    static let program = """
        import json, os, sys, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        out = open(sys.argv[2], "a", buffering=1)
        class R(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.time()
                self.send_response(204); self.end_headers()
                out.write("%s %s %.6f\\n" % (json.loads(body)["data"].get("runId", "-"), self.headers["Kaizen-Delivery"], at))
            def log_message(self, *args): pass
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), R).serve_forever()
        """

    static func start() throws -> HookReceiver {
        let folder = NSTemporaryDirectory() + "kaizen-load-hooks-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(program.utf8).write(to: URL(fileURLWithPath: folder + "/receiver.py"))
        let port = try EmbeddedPostgres.freePort()
        let log = folder + "/deliveries.log"
        let pid = try Processes.spawn(["/usr/bin/env", "python3", folder + "/receiver.py", String(port), log], log: folder + "/receiver.out")
        Thread.sleep(forTimeInterval: 0.5)
        return HookReceiver(pid: pid, port: port, log: log)
    }

    func deliveries() -> [Delivery] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, let at = Double(parts[2]) else { return nil }
            return Delivery(runID: String(parts[0]), id: String(parts[1]), at: at)
        }
    }

    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

/// One live stream held open by the harness: records each `run.finalized` it receives (run id, position, arrival).
final class StreamWatcher: Sendable {
    struct Seen: Sendable {
        let runID: String
        let position: Int64
        let at: Double
    }

    let received = Mutex<[Seen]>([])
    let task = Mutex<Task<Void, Never>?>(nil)

    static func open(client: HTTPClient, base: String, token: String) async throws -> StreamWatcher {
        var request = HTTPClientRequest(url: base + "/v1/events/stream?kind=run.finalized")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, deadline: .now() + .hours(2))
        guard response.status == .ok else { throw HarnessError("event stream: \(response.status)") }
        let watcher = StreamWatcher()
        let reader = Task {
            var buffer = ""
            do {
                for try await chunk in response.body {
                    buffer += String(buffer: chunk)
                    while let end = buffer.range(of: "\n\n") {
                        let block = buffer[..<end.lowerBound]
                        buffer.removeSubrange(..<end.upperBound)
                        var id: Int64?
                        var data = ""
                        for line in block.split(separator: "\n") {
                            if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                            if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
                        }
                        guard let id, let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
                            let runID = object["subjectId"] as? String
                        else { continue }
                        let at = Date().timeIntervalSince1970
                        watcher.received.withLock { $0.append(Seen(runID: runID, position: id, at: at)) }
                    }
                }
            } catch {}
        }
        watcher.task.withLock { $0 = reader }
        return watcher
    }

    func seen() -> [Seen] { received.withLock { $0 } }
    func close() { task.withLock { $0?.cancel() } }
}
