import Foundation
import KaizenServer
import KaizenTestSupport
import Storage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12: two `kaizen serve` processes on the same two PostgreSQL servers behave as one server.
/// Nothing here waits for a cache to expire: the identity cache lives an hour, actors are never idle.
@Suite(.serialized) struct MultiNodeTests {
    struct Cluster {
        let a: KaizenNode
        let b: KaizenNode
        let adminA: APIClient
        let adminB: APIClient
    }

    func withTwoNodes(_ body: (Cluster) async throws -> Void) async throws {
        let urls = try await TestPostgres.shared.freshDatabases()
        let root = NSTemporaryDirectory() + "kaizen-nodes-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let environment = [
            "KAIZEN_DATABASE_URLS": urls.map(\.urlWithCredentials).joined(separator: ","), "KAIZEN_SHARDS": "8",
            // Long enough that only the identity feed can explain a revoke seen on the other node.
            "KAIZEN_AUTH_CACHE_SECONDS": "3600", "KAIZEN_ACTOR_IDLE_SECONDS": "3600",
            "KAIZEN_FINALIZE_QUOTA": "100000", "KAIZEN_RATE_LIMIT_USER": "100000", "KAIZEN_RATE_LIMIT_WORKSPACE": "100000",
            "KAIZEN_LOG_LEVEL": "info",
        ]
        // The first node creates the `default` workspace and its admin token; the second joins.
        let a = try await KaizenNode.start(
            port: try EmbeddedPostgres.freePort(), environment: environment.merging(["KAIZEN_DATA_DIR": root + "/a"]) { $1 },
            logPath: root + "-a.log")
        defer { a.kill() }
        let b = try await KaizenNode.start(
            port: try EmbeddedPostgres.freePort(), environment: environment.merging(["KAIZEN_DATA_DIR": root + "/b"]) { $1 },
            logPath: root + "-b.log")
        defer { b.kill() }
        let token = try String(contentsOfFile: root + "/a/first-token.txt", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await body(
            Cluster(
                a: a, b: b, adminA: APIClient(baseURL: a.baseURL, token: token),
                adminB: APIClient(baseURL: b.baseURL, token: token)))
    }

    @Test func aProjectCreatedOnOneNodeIsFoundOnTheOtherAtOnce() async throws {
        try await withTwoNodes { c in
            // B loads its (empty) project cache first, so what follows is a cache miss, not a first load.
            #expect(try await c.adminB.get("/v1/projects").status == 200)
            #expect(try await c.adminB.get("/v1/projects/web").status == 404)
            #expect(try await c.adminA.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let found = try await c.adminB.get("/v1/projects/web")
            #expect(found.status == 200, "\(found.text)")
            let listed = try await c.adminB.get("/v1/projects")
            #expect(listed.array.compactMap { $0["slug"] as? String } == ["web"])
            // A push through B lands in the project A created, and A sees the run.
            let pushed = try await c.adminB.post("/v1/ingest/kensho/finalize", json: document("first", ["t1": "passed"]))
            #expect(pushed.status == 200, "\(pushed.text)")
            #expect(try await c.adminA.get("/v1/runs/\(pushed.object["internalRunId"] as? String ?? "")").status == 200)
            // Both nodes refuse the same slug twice.
            #expect(try await c.adminB.post("/v1/projects", json: ["slug": "web", "name": "Again"]).status == 409)
        }
    }

    /// Finalizes of one project racing through both nodes: unique, gapless sequence numbers, one run per
    /// externalRunId, and exactly the regressions a sequential replay in sequence order gives.
    @Test func racingFinalizesThroughBothNodesMatchASequentialReplay() async throws {
        try await withTwoNodes { c in
            #expect(try await c.adminA.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let cases = (0..<6).map { "t\($0)" }
            var generator = SeededGenerator(seed: 20_261_130)
            let runs: [(id: String, statuses: [String: String])] = (0..<24).map { index in
                (
                    "run-\(index)",
                    Dictionary(uniqueKeysWithValues: cases.map { ($0, ["passed", "failed", "broken", "passed"][Int(generator.next() % 4)]) })
                )
            }
            // Four at a time, alternating nodes; every run is pushed twice (once through each node) to race duplicates too.
            try await withThrowingTaskGroup(of: Int.self) { group in
                var next = 0
                func push(_ index: Int) {
                    let run = runs[index / 2]
                    let client = index % 2 == 0 ? c.adminA : c.adminB
                    group.addTask {
                        let reply = try await client.post("/v1/ingest/kensho/finalize", json: document(run.id, run.statuses))
                        return reply.status
                    }
                }
                while next < 4 {
                    push(next)
                    next += 1
                }
                while let status = try await group.next() {
                    #expect(status == 200)
                    if next < runs.count * 2 {
                        push(next)
                        next += 1
                    }
                }
            }

            // Every run, oldest first, as stored.
            var stored: [[String: Any]] = []
            var cursor: String?
            repeat {
                let page = try await c.adminB.get("/v1/projects/web/runs?limit=10" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                stored += page.object["items"] as? [[String: Any]] ?? []
                cursor = page.object["nextCursor"] as? String
            } while cursor != nil
            stored.reverse()
            #expect(stored.count == runs.count)
            #expect(Set(stored.compactMap { $0["externalRunId"] as? String }).count == runs.count)

            // The sequential replay: each run compared with the one stored before it.
            let byExternal = Dictionary(uniqueKeysWithValues: runs.map { ($0.id, $0.statuses) })
            var previous: (id: String, statuses: [String: String])?
            for run in stored {
                let external = run["externalRunId"] as? String ?? ""
                let statuses = byExternal[external] ?? [:]
                let regression = run["regression"] as? [String: Any] ?? [:]
                let baseline = (regression["baseline"] as? [String: Any])?["id"] as? String
                #expect(baseline == previous?.id, "run \(external): baseline \(baseline ?? "none")")
                func failing(_ status: String?) -> Bool { status == "failed" || status == "broken" }
                var expected = (new: 0, fixed: 0, still: 0)
                for name in cases {
                    let now = statuses[name], before = previous?.statuses[name]
                    if failing(now) && failing(before) { expected.still += 1 }
                    else if failing(now) { expected.new += 1 }
                    else if now == "passed" && failing(before) { expected.fixed += 1 }
                }
                #expect(regression["newFailures"] as? Int == expected.new, "run \(external)")
                #expect(regression["fixed"] as? Int == expected.fixed, "run \(external)")
                #expect(regression["stillFailing"] as? Int == expected.still, "run \(external)")
                previous = (run["id"] as? String ?? "", statuses)
            }
        }
    }

    @Test func aTokenRevokedOnOneNodeIsRefusedByTheOtherAtOnce() async throws {
        try await withTwoNodes { c in
            let minted = try await c.adminA.post(
                "/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            #expect(minted.status == 201, "\(minted.text)")
            let secret = try #require(minted.object["secret"] as? String)
            let id = try #require(minted.object["id"] as? String)
            // B caches the identity (for an hour, as configured).
            #expect(try await c.adminB.with(token: secret).get("/v1/projects").status == 200)
            #expect(try await c.adminA.delete("/v1/workspaces/default/tokens/\(id)").status == 200)
            // "At once": as soon as the notification arrives, far below the cache's hour (the deadline only
            // bounds a broken feed).
            let deadline = ContinuousClock.now + .seconds(testConditionTimeout)
            var status = 0
            while ContinuousClock.now < deadline {
                status = try await c.adminB.with(token: secret).get("/v1/projects").status
                if status == 401 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(status == 401)
        }
    }

    @Test func aFlakyPolicySetOnOneNodeGovernsRollUpsOfRunsPushedToTheOther() async throws {
        try await withTwoNodes { c in
            #expect(try await c.adminA.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            // The default policy needs 5 results and 3 flips; this one 3 and 2.
            let policy: [String: Any] = [
                "window": 30, "threshold": 0.2, "minResults": 3, "minFlips": 2, "infraFailureRatio": 0.5, "infraMinCases": 10,
            ]
            #expect(try await c.adminA.put("/v1/projects/web/flaky-policy", json: policy).status == 200)
            for (index, status) in ["passed", "failed", "passed"].enumerated() {
                let reply = try await c.adminB.post(
                    "/v1/ingest/kensho/finalize", json: document("w\(index)", ["wobbly": status, "steady": "passed"]))
                #expect(reply.status == 200, "\(reply.text)")
            }
            let deadline = ContinuousClock.now + .seconds(testConditionTimeout)
            var names: [String] = []
            while ContinuousClock.now < deadline {
                let flaky = try await c.adminB.get("/v1/projects/web/flaky")
                names = (flaky.object["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                if !names.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(names == ["wobbly"])
        }
    }
}

/// A kensho/v1 document of one run on `main` with these case statuses.
func document(_ externalRunId: String, _ statuses: [String: String]) -> [String: Any] {
    var totals = ["passed": 0, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0]
    for status in statuses.values { totals[status, default: 0] += 1 }
    return [
        "schemaVersion": "kensho/v1", "project": ["slug": "web"], "externalRunId": externalRunId, "branch": "main",
        "totals": totals,
        "cases": statuses.sorted { $0.key < $1.key }.map { ["name": $0.key, "status": $0.value, "durationMs": 1] },
    ]
}

/// SplitMix64: the same runs every time.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
