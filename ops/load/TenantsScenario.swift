import AsyncHTTPClient
import Foundation

/// Scenario 5: a thousand workspaces touched in one run (a project, a finalize, reads each): the
/// server's memory and the footprint per workspace actor; then, on a second server whose actors
/// idle out after `idleSeconds`, idle actors evicted. The two are measured apart so that neither
/// check depends on how long the touching takes on this machine.
struct TenantsScenario {
    let workspaces: Int
    let idleSeconds = 4
    let evictionWorkspaces = 100

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say("\n## Many tenants: \(workspaces) workspaces touched; eviction of actors idle for \(idleSeconds) s")
        try await footprint(environment, findings: findings)
        try await eviction(environment, findings: findings)
    }

    func footprint(_ environment: LoadEnvironment, findings: Findings) async throws {
        // Actors stay for the whole touch phase, however long it takes here.
        let server = try await KaizenProcess.start(environment, name: "tenants", settings: ["KAIZEN_ACTOR_IDLE_SECONDS": "3600"])
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
        let memory = server.memory
        try await client.shutdown()
        await server.stop()

        let perActor = Double(rssTouched - rssBefore) / Double(max(1, live))
        findings.say(String(format: "- touched %d workspaces in %.1f s: %@", workspaces, elapsed, tally.statusLine()))
        findings.say("- workspace actors live after the run: \(live); server RSS \(megabytes(rssBefore)) before, \(megabytes(rssTouched)) after, peak \(megabytes(memory.peak))")
        findings.say(String(format: "- footprint per workspace (RSS growth / actors, includes caches and pools): %.1f KB", perActor / 1024))
        findings.say("- **peak RSS \(megabytes(memory.peak)) with \(workspaces) workspaces** (target ≤ 200 MB)")
        findings.check(tally.serverErrors == 0, "tenants: \(tally.serverErrors) 5xx")
        findings.check(tally.statuses.keys.allSatisfy { $0 == 200 || $0 == 201 }, "tenants: unexpected statuses \(tally.statusLine())")
        findings.check(live >= workspaces, "tenants: only \(live) actors live after touching \(workspaces) workspaces")
    }

    /// Touches workspaces, then waits for the evictor: every actor must be gone within four idle
    /// periods of the last touch (the evictor runs every quarter of the idle period).
    func eviction(_ environment: LoadEnvironment, findings: Findings) async throws {
        let server = try await KaizenProcess.start(
            environment, name: "eviction", settings: ["KAIZEN_ACTOR_IDLE_SECONDS": "\(idleSeconds)"])
        let tenants = try await Tenants.open(server, logger: environment.logger)
        defer { tenants.close() }
        let client = makeLoadClient()
        let health = Caller(client: client, base: server.plaintextURL, token: nil)
        func actors() async throws -> Int { try await health.get("/healthz").object["workspaceActors"] as? Int ?? -1 }
        var touched = 0
        for w in 0..<evictionWorkspaces {
            let token = try await tenants.make("evict-\(w)").token
            let listed = try await Caller(client: client, base: server.plaintextURL, token: token).get("/v1/projects")
            if listed.status == 200 { touched += 1 }
        }
        let lastTouch = now()
        let live = try await actors()
        var remaining = live
        while now() - lastTouch < Double(idleSeconds) * 4 && remaining > 0 {
            try await Task.sleep(for: .milliseconds(250))
            remaining = try await actors()
        }
        let gone = now() - lastTouch
        try await client.shutdown()
        await server.stop()
        findings.say(
            String(format: "- eviction: %d workspaces touched, %d actors live at the last touch, %d left %.1f s later (idle period %d s)",
                   touched, live, remaining, gone, idleSeconds))
        findings.check(touched == evictionWorkspaces, "tenants: \(touched) of \(evictionWorkspaces) eviction touches answered 200")
        findings.check(remaining == 0, "tenants: \(remaining) idle actors were not evicted within \(idleSeconds * 4) s of the last touch")
    }
}
