import AsyncHTTPClient
import Foundation
import Histogram
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// Scenario 3: h2load (h2c, prior knowledge) against an authenticated, cached `GET /v1/runs/:id`,
/// and against a bare Hummingbird handler answering the same bytes on the same machine, same run.
struct ReadScenario {
    let seconds: Int
    let connections: Int
    let streams: Int

    struct Load {
        var requestsPerSecond: Double
        var succeeded: Int
        var total: Int
        var non2xx: Int
        var latency: Histogram<UInt64>
    }

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say("\n## Read path: h2load, \(connections) connections × \(streams) streams, \(seconds) s, HTTP/2 (h2c)")
        let server = try await KaizenProcess.start(
            environment, name: "reads", settings: ["KAIZEN_RATE_LIMIT_WORKSPACE": "100000000"])
        let client = makeLoadClient()
        let caller = Caller(client: client, base: server.plaintextURL, token: server.token)
        _ = try await caller.post("/v1/projects", json: ["slug": "reads", "name": "Reads"])
        var generator = PipelineGenerator(project: "reads", cases: 200, seed: 42)
        let run = generator.next()
        var document = (try JSONSerialization.jsonObject(with: run.document(uploadId: "x"))) as! [String: Any]
        document["uploadId"] = nil
        for index in 0..<3 {  // no attachments in this run
            var cases = document["cases"] as! [[String: Any]]
            cases[index]["attachments"] = nil
            document["cases"] = cases
        }
        let pushed = try await caller.post("/v1/ingest/kensho/finalize", json: document)
        guard pushed.status == 200, let runID = pushed.object["internalRunId"] as? String else {
            throw HarnessError("reads: finalize failed \(pushed.status) \(pushed.text)")
        }
        let sample = try await caller.get("/v1/runs/\(runID)")
        guard sample.status == 200 else { throw HarnessError("reads: GET run \(sample.status)") }
        try await client.shutdown()

        // The bare server answers the same body from memory.
        let bodyFile = environment.root + "/bare-body.json"
        try sample.body.write(to: URL(fileURLWithPath: bodyFile))
        let barePort = try EmbeddedPostgres.freePort()
        let bare = try Processes.spawn(
            [Processes.selfPath, "_bare", "--port", "\(barePort)", "--body", bodyFile], log: environment.root + "/bare.log")
        try await waitForPort(barePort)

        let kaizen = try await h2load(
            "http://127.0.0.1:\(server.port)/v1/runs/\(runID)", token: server.token, log: environment.root + "/h2load-kaizen.log")
        let memory = server.memory
        let limit = try await h2load("http://127.0.0.1:\(barePort)/v1/runs/\(runID)", token: server.token, log: environment.root + "/h2load-bare.log")
        kill(bare, SIGTERM)
        _ = await Processes.wait(bare)
        await server.stop()

        func line(_ name: String, _ load: Load) -> String {
            String(format: "- %@: %.0f req/s, %d of %d succeeded, ", name, load.requestsPerSecond, load.succeeded, load.total)
                + "latency p50 \(us(load.latency.valueAtPercentile(50))), p99 \(us(load.latency.valueAtPercentile(99))), max \(us(load.latency.maxRecorded))"
        }
        findings.say(line("Kaizen `GET /v1/runs/:id` (bearer token, \(sample.body.count) B JSON)", kaizen))
        findings.say(line("limit, bare Hummingbird handler, same bytes", limit))
        findings.say(String(format: "- **Kaizen = %.0f %% of the bare server's req/s** (target ≥ 60 %%); server RSS after: %@",
                            100 * kaizen.requestsPerSecond / limit.requestsPerSecond, megabytes(memory.rss)))
        findings.check(kaizen.non2xx == 0 && kaizen.succeeded == kaizen.total, "reads: \(kaizen.non2xx) non-2xx of \(kaizen.total)")
    }

    func us(_ value: UInt64) -> String { value >= 10_000 ? String(format: "%.1f ms", Double(value) / 1000) : "\(value) µs" }

    func h2load(_ url: String, token: String, log: String) async throws -> Load {
        let result = try await Processes.run([
            "h2load", "-t", "1", "-c", "\(connections)", "-m", "\(streams)", "-D", "\(seconds)", "--warm-up-time=1",
            "-H", "authorization: Bearer \(token)", "--log-file=\(log)", url,
        ])
        guard result.status == 0 else { throw HarnessError("h2load failed (is nghttp2-client installed?): \(result.output)") }
        func number(after marker: String, in text: String) -> Double? {
            guard let range = text.range(of: marker) else { return nil }
            let rest = text[range.upperBound...].drop(while: { $0 == " " })
            return Double(rest.prefix(while: { $0.isNumber || $0 == "." }))
        }
        // "finished in 10.00s, 12345.60 req/s, …" and "requests: N total, N started, N done, N succeeded, …"
        let finished = result.output.split(separator: "\n").first { $0.hasPrefix("finished in") }.map(String.init) ?? ""
        let rps = finished.split(separator: ",").dropFirst().first.flatMap { Double($0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) } ?? 0
        let requests = result.output.split(separator: "\n").first { $0.hasPrefix("requests:") }.map(String.init) ?? ""
        let total = Int(number(after: "requests:", in: requests) ?? 0)
        let succeeded = Int(requests.split(separator: ",").first { $0.contains("succeeded") }?.split(separator: " ").first.flatMap { Double($0) } ?? 0)
        let codes = result.output.split(separator: "\n").first { $0.hasPrefix("status codes:") }.map(String.init) ?? ""
        let ok = Int(number(after: "status codes:", in: codes) ?? 0)
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for line in (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? [] {
            let columns = line.split(separator: "\t")
            if columns.count >= 3, let micros = UInt64(columns[2]) { _ = latency.record(max(1, micros)) }
        }
        return Load(requestsPerSecond: rps, succeeded: succeeded, total: total, non2xx: max(0, total - ok), latency: latency)
    }
}

/// Waits until something accepts TCP connections on the port (the bare server speaks only h2c).
func waitForPort(_ port: Int) async throws {
    for _ in 0..<100 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw HarnessError("nothing listens on port \(port)")
}
