import AsyncHTTPClient
import Domains
import Foundation
import KaizenServer
import Logging
import NIOCore
import PostgresNIO
import Storage

// Finalize of an N-case run with 5 steps per case, over HTTP, against raw `COPY` of the same rows
// into the same PostgreSQL server, measured in the same run, rounds alternating. Prints one line per measurement and
// a summary; exits non-zero if any finalize fails or answers wrongly.

let caseCount = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 10_000
let stepsPerCase = 5
let rounds = 5
var logger = Logger(label: "ingest-bench")
// `KAIZEN_BENCH_LOG_LEVEL=debug` shows where each finalize's time goes ("kensho document read", "finalize phases",
// "run written").
let logLevel = ProcessInfo.processInfo.environment["KAIZEN_BENCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
logger.logLevel = logLevel

func now() -> Double { Date().timeIntervalSince1970 }

let root = "/tmp/kaizen-bench-\(getpid())"
let postgres = EmbeddedPostgres(directory: root + "/pg", database: "kaizen", logger: logger)
let started = try await postgres.start()

var config = KaizenConfiguration()
config.port = 0
config.databaseURLs = [started.url]
config.dataDirectory = root + "/data"
config.maxBodyBytes = 512 * 1024 * 1024
config.finalizeQuota = .init(perMinute: 100_000)
config.workspaceRateLimit = .init(perMinute: 1_000_000)
config.logLevel = logLevel.rawValue

final class ReadyBox: @unchecked Sendable {
    // Written once by the server task before `ready` is signalled, read after: the semaphore orders them.
    var port = 0
    let ready = DispatchSemaphore(value: 0)
}
let box = ReadyBox()
let frozen = config
let server = Task {
    try await KaizenServerRunner.run(config: frozen, logger: logger, gracefulShutdownSignals: []) { info in
        box.port = info.port
        box.ready.signal()
    }
}
await withCheckedContinuation { continuation in
    DispatchQueue.global().async {
        box.ready.wait()
        continuation.resume()
    }
}
let base = "http://127.0.0.1:\(box.port)"
let token = try String(contentsOfFile: frozen.firstTokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

func post(_ path: String, _ body: Data) async throws -> (Int, Data) {
    var request = HTTPClientRequest(url: base + path)
    request.method = .POST
    request.headers.add(name: "Authorization", value: "Bearer \(token)")
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(bytes: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
    let data = try await response.body.collect(upTo: 64 * 1024 * 1024)
    return (Int(response.status.code), Data(buffer: data))
}

func get(_ path: String) async throws -> (Int, Data) {
    var request = HTTPClientRequest(url: base + path)
    request.headers.add(name: "Authorization", value: "Bearer \(token)")
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
    let data = try await response.body.collect(upTo: 64 * 1024 * 1024)
    return (Int(response.status.code), Data(buffer: data))
}

/// Waits until the post-ingest roll-up jobs are done, so the next measurement does not share the
/// two cores with them; returns how long that took (reported: it is Kaizen's work too, just later).
func drainJobs() async throws -> Double {
    let t0 = now()
    while true {
        let (_, queued) = try await get("/v1/workspaces/default/jobs?state=queued")
        let (_, running) = try await get("/v1/workspaces/default/jobs?state=running")
        let pending = [queued, running].map { (try? JSONSerialization.jsonObject(with: $0)) as? [Any] ?? [] }
        if pending.allSatisfy(\.isEmpty) { return now() - t0 }
        try await Task.sleep(for: .milliseconds(20))
    }
}

_ = try await post("/v1/projects", Data(#"{"slug":"bench","name":"Bench"}"#.utf8))

/// A run where case i fails when (i + round) % 10 == 0, so each round flips statuses against the last.
func document(round: Int) -> (Data, RunTotals) {
    var totals = RunTotals()
    var cases: [[String: Any]] = []
    cases.reserveCapacity(caseCount)
    for i in 0..<caseCount {
        let failing = (i + round) % 10 == 0
        totals.count(failing ? .failed : .passed, flaky: false)
        var item: [String: Any] = [
            "name": "test_case_\(i)", "suite": "Suite\(i % 50)", "file": "Tests/Suite\(i % 50).swift",
            "status": failing ? "failed" : "passed", "durationMs": Double(i % 100),
            "labels": ["owner": "team-\(i % 7)"],
            "steps": (0..<stepsPerCase).map { s in
                ["name": "step \(s)", "status": failing && s == stepsPerCase - 1 ? "failed" : "passed", "durationMs": 1.0]
            },
        ]
        if failing { item["error"] = ["type": "AssertionError", "message": "expected \(i) to equal \(i + 1)"] }
        cases.append(item)
    }
    let doc: [String: Any] = [
        "schemaVersion": "kensho/v1", "project": ["slug": "bench"], "externalRunId": "bench-\(round)", "branch": "main",
        "totals": ["passed": totals.passed, "failed": totals.failed, "skipped": 0, "broken": 0, "flaky": 0],
        "cases": cases,
    ]
    return (try! JSONSerialization.data(withJSONObject: doc), totals)
}

// Warm-up run (also the first baseline), not measured.
let (warm, _) = document(round: 0)
let (warmStatus, _) = try await post("/v1/ingest/kensho/finalize", warm)
guard warmStatus == 200 else { fatalError("warm-up finalize failed: \(warmStatus)") }
_ = try await drainJobs()

// The limit: raw COPY (text format) of the same rows into the same tables on the same server.
let copyDatabase = "kaizen_copy_limit"
let copyStarted = try await EmbeddedPostgres(directory: root + "/pg", database: copyDatabase, logger: logger).start()
let copyServers = try StorageCluster.makeServers(urls: [copyStarted.url], logger: logger)
let pools = Task { await StorageCluster.runPools(copyServers) }
_ = try await StorageCluster.open(servers: copyServers, logicalShards: 1, logger: logger)

/// Text-format rows of one run's results and steps: what a finalize writes once the case inventory exists.
func copyRows(round: Int) -> (results: ByteBuffer, steps: ByteBuffer) {
    var results = ByteBuffer(), steps = ByteBuffer()
    let run = "run_copy_\(round)"
    for i in 0..<caseCount {
        let failing = (i + round) % 10 == 0
        let caseID = "case_\(round)_\(i)"
        results.writeString(
            "ws\t\(run)\t\(i)\t\(caseID)\t\(failing ? "failed" : "passed")\t\(i % 100)\t1\tf\t\\N\t"
                + (failing ? "AssertionError\texpected \(i) to equal \(i + 1)" : "\\N\t\\N")
                + "\t\\N\t{\"owner\":\"team-\(i % 7)\"}\t{}\t{}\n")
        // One row per case, its steps as the JSON Kaizen stores (`case_steps`).
        if stepsPerCase > 0 {
            let items = (0..<stepsPerCase).map { s in
                "[\(s),null,0,\"step \(s)\",\"\(failing && s == stepsPerCase - 1 ? "failed" : "passed")\",1,[]]"
            }
            steps.writeString("ws\t\(run)\t\(i)\t[\(items.joined(separator: ","))]\n")
        }
    }
    return (results, steps)
}

var kaizenTimes: [Double] = []
var rollupTimes: [Double] = []
var bodyBytes = 0
@MainActor func kaizenRound(_ round: Int) async throws {
    let (body, totals) = document(round: round)
    bodyBytes = body.count
    let t0 = now()
    let (status, reply) = try await post("/v1/ingest/kensho/finalize", body)
    let elapsed = now() - t0
    guard status == 200, let json = try JSONSerialization.jsonObject(with: reply) as? [String: Any],
        let regression = json["regression"] as? [String: Any]
    else { fatalError("finalize failed: \(status) \(String(decoding: reply.prefix(300), as: UTF8.self))") }
    // Each round shifts the failing cases by one: the previous round's failures are fixed, new ones appear.
    let expectedNew = totals.failed
    guard regression["newFailures"] as? Int == expectedNew, regression["fixed"] as? Int == expectedNew else {
        fatalError("wrong regression: \(regression), expected \(expectedNew) new and fixed")
    }
    kaizenTimes.append(elapsed)
    let rollup = try await drainJobs()
    rollupTimes.append(rollup)
    print(String(format: "finalize round %d: %.3f s (its roll-up job then took %.3f s more)", round, elapsed, rollup))
}

var copyTimes: [Double] = []
@MainActor func copyRound(_ round: Int) async throws {
    let rows = copyRows(round: round)
    let t0 = now()
    try await copyServers[0].transaction { connection in
        try await connection.copyFrom(
            table: "case_results",
            columns: ["workspace_id", "run_id", "ordinal", "case_id", "status", "duration_ms", "attempts", "flaky",
                      "regression", "error_type", "error_message", "error_trace", "labels", "parameters", "attachments"],
            logger: logger
        ) { writer in try await writer.write(rows.results) }
        try await connection.copyFrom(
            table: "case_steps", columns: ["workspace_id", "run_id", "case_ordinal", "steps"], logger: logger
        ) { writer in try await writer.write(rows.steps) }
    }
    let elapsed = now() - t0
    copyTimes.append(elapsed)
    print(String(format: "raw COPY round %d: %.3f s", round, elapsed))
}

// Alternate the two so both meet the same server state (checkpoints, autovacuum, cache).
for round in 1...rounds {
    try await kaizenRound(round)
    try await copyRound(round)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
let rowsPerRun = caseCount * (stepsPerCase > 0 ? 2 : 1)  // a result and a row of its steps per case
let kaizen = median(kaizenTimes)
let copy = median(copyTimes)
print("---")
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB")
print(String(format: "run: %d cases, %d steps, %.1f MB of JSON, %d rows", caseCount, caseCount * stepsPerCase, Double(bodyBytes) / 1e6, rowsPerRun))
print(String(format: "kaizen finalize (HTTP, validate, regression, persist): median %.3f s = %.0f cases/s, %.0f rows/s", kaizen, Double(caseCount) / kaizen, Double(rowsPerRun) / kaizen))
print(String(format: "raw COPY of the same rows, same server:              median %.3f s = %.0f cases/s, %.0f rows/s", copy, Double(caseCount) / copy, Double(rowsPerRun) / copy))
print(String(format: "post-ingest roll-up job, after the response:           median %.3f s", median(rollupTimes)))
print(String(format: "ratio: kaizen reaches %.0f%% of raw COPY", 100 * copy / kaizen))

pools.cancel()
server.cancel()
_ = try? await server.value
await postgres.stop()
try? FileManager.default.removeItem(atPath: root)
