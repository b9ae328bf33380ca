import AsyncHTTPClient
import Foundation

/// Scenario 4: some clients exceed their token class's rate limit; only they get 429 (always with
/// `Retry-After`), the others are unaffected, nothing is 5xx and the server's memory stays flat.
struct LimitsScenario {
    let seconds: Double

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        let perMinute = 120
        findings.say("\n## Limits under load: workspace tokens limited to \(perMinute)/min (10 s burst), \(Int(seconds)) s")
        let server = try await KaizenProcess.start(
            environment, name: "limits",
            settings: ["KAIZEN_RATE_LIMIT_WORKSPACE": "\(perMinute)", "KAIZEN_RATE_LIMIT_BURST_SECONDS": "10"])
        let tenants = try await Tenants.open(server, logger: environment.logger)
        defer { tenants.close() }
        let client = makeLoadClient()
        let greedy = try await (0..<2).asyncMap { try await tenants.make("greedy-\($0)").token }
        let polite = try await (0..<2).asyncMap { try await tenants.make("polite-\($0)").token }
        let deadline = now() + seconds
        let sampler = Task {
            var peak = 0
            while !Task.isCancelled {
                peak = max(peak, server.memory.rss)
                try? await Task.sleep(for: .milliseconds(200))
            }
            return peak
        }
        let rssBefore = server.memory.rss

        struct Outcome: Sendable {
            var greedy: Bool
            var tally = Tally()
            var missingRetryAfter = 0
        }
        let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
            for token in greedy {
                for _ in 0..<4 {  // four concurrent request loops per greedy client
                    group.addTask {
                        var outcome = Outcome(greedy: true)
                        let caller = Caller(client: client, base: server.tlsURL, token: token)
                        while now() < deadline {
                            let reply = try await caller.get("/v1/projects")
                            outcome.tally.record(status: reply.status, version: reply.version, micros: reply.micros)
                            if reply.status == 429 && reply.headers.first(name: "retry-after") == nil { outcome.missingRetryAfter += 1 }
                        }
                        return outcome
                    }
                }
            }
            for token in polite {
                group.addTask {
                    var outcome = Outcome(greedy: false)
                    let caller = Caller(client: client, base: server.tlsURL, token: token)
                    while now() < deadline {
                        let reply = try await caller.get("/v1/projects")
                        outcome.tally.record(status: reply.status, version: reply.version, micros: reply.micros)
                        try await Task.sleep(for: .milliseconds(500))  // 2/s: within the limit with room to spare
                    }
                    return outcome
                }
            }
            var all: [Outcome] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        sampler.cancel()
        let peak = await sampler.value
        try await client.shutdown()
        await server.stop()

        var greedyTally = Tally(), politeTally = Tally()
        var missing = 0
        for outcome in outcomes {
            if outcome.greedy { greedyTally.merge(outcome.tally) } else { politeTally.merge(outcome.tally) }
            missing += outcome.missingRetryAfter
        }
        findings.say("- over-limit clients (2 workspaces × 4 loops): \(greedyTally.statusLine()); latency \(greedyTally.percentiles())")
        findings.say("- clients within their limit (2 workspaces, 2 req/s): \(politeTally.statusLine()); latency \(politeTally.percentiles())")
        findings.say("- server RSS \(megabytes(rssBefore)) at start, at most \(megabytes(peak)) during the run")
        findings.check((greedyTally.statuses[429] ?? 0) > 0, "limits: the over-limit clients were never limited")
        findings.check(missing == 0, "limits: \(missing) 429 responses lacked Retry-After")
        findings.check(politeTally.statuses.keys.allSatisfy { $0 == 200 }, "limits: clients within their limit got \(politeTally.statusLine())")
        findings.check(greedyTally.serverErrors + politeTally.serverErrors == 0, "limits: 5xx responses under load")
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
