import AsyncHTTPClient
import Foundation

/// Scenario 5: a thousand workspaces touched in one run (a project, a finalize, reads each): the
/// server's memory and the footprint per workspace actor, then idle actors evicted.
struct TenantsScenario {
    let workspaces: Int
    let idleSeconds = 8

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say("\n## Many tenants: \(workspaces) workspaces touched, actors idle after \(idleSeconds) s")
        let server = try await KaizenProcess.start(
            environment, name: "tenants", settings: ["KAIZEN_ACTOR_IDLE_SECONDS": "\(idleSeconds)"])
        let tenants = try await Tenants.open(server, logger: environment.logger)
        defer { tenants.close() }
        var tokens: [String] = []
        for w in 0..<workspaces { tokens.append(try await tenants.make("tenant-\(w)").token) }
        let client = makeLoadClient()
        let health = Caller(client: client, base: server.plaintextURL, token: nil)
        func actors() async throws -> Int { try await health.get("/healthz").object["workspaceActors"] as? Int ?? -1 }
        _ = try await actors()
        let rssBefore = server.memory.rss

        var generator = PipelineGenerator(project: "web", cases: 20, seed: 7)
        var document = (try JSONSerialization.jsonObject(with: generator.next().document(uploadId: "x"))) as! [String: Any]
        document["uploadId"] = nil
        var cases = document["cases"] as! [[String: Any]]
        for index in 0..<3 { cases[index]["attachments"] = nil }
        document["cases"] = cases
        let body = try JSONSerialization.data(withJSONObject: document)

        let started = now()
        let tally = try await withThrowingTaskGroup(of: Tally.self) { group in
            let lanes = 16
            for lane in 0..<lanes {
                let mine = stride(from: lane, to: tokens.count, by: lanes).map { tokens[$0] }
                group.addTask {
                    var tally = Tally()
                    for token in mine {
                        let caller = Caller(client: client, base: server.tlsURL, token: token)
                        let created = try await caller.post("/v1/projects", json: ["slug": "web", "name": "Web"])
                        tally.record(status: created.status, version: created.version)
                        let pushed = try await caller.send(.POST, "/v1/ingest/kensho/finalize", body: body)
                        tally.record(status: pushed.status, version: pushed.version, micros: pushed.micros)
                        if let id = pushed.object["internalRunId"] as? String {
                            let read = try await caller.get("/v1/runs/\(id)")
                            tally.record(status: read.status, version: read.version)
                        }
                        let listed = try await caller.get("/v1/projects")
                        tally.record(status: listed.status, version: listed.version)
                    }
                    return tally
                }
            }
            var all = Tally()
            for try await tally in group { all.merge(tally) }
            return all
        }
        let elapsed = now() - started
        let live = try await actors()
        let rssTouched = server.memory.rss
        // Wait for the evictor (it runs every quarter of the idle time).
        var remaining = live
        let deadline = now() + Double(idleSeconds) * 4
        while now() < deadline && remaining > 0 {
            try await Task.sleep(for: .seconds(1))
            remaining = try await actors()
        }
        let memory = server.memory
        try await client.shutdown()
        await server.stop()

        let perActor = Double(rssTouched - rssBefore) / Double(max(1, live))
        findings.say(String(format: "- touched %d workspaces in %.1f s: %@", workspaces, elapsed, tally.statusLine()))
        findings.say("- workspace actors live after the run: \(live); server RSS \(megabytes(rssBefore)) before, \(megabytes(rssTouched)) after, peak \(megabytes(memory.peak))")
        findings.say(String(format: "- footprint per workspace (RSS growth / actors, includes caches and pools): %.1f KB", perActor / 1024))
        findings.say("- after \(idleSeconds) s idle: \(remaining) actors left; RSS \(megabytes(memory.rss)) (the allocator keeps freed pages)")
        findings.say("- **peak RSS \(megabytes(memory.peak)) with \(workspaces) workspaces** (target ≤ 200 MB)")
        findings.check(tally.serverErrors == 0, "tenants: \(tally.serverErrors) 5xx")
        findings.check(tally.statuses.keys.allSatisfy { $0 == 200 || $0 == 201 }, "tenants: unexpected statuses \(tally.statusLine())")
        findings.check(live >= workspaces, "tenants: only \(live) actors live after touching \(workspaces) workspaces")
        findings.check(remaining == 0, "tenants: \(remaining) idle actors were not evicted")
    }
}
