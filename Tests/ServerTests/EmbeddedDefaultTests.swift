import Dispatch
import Foundation
import KaizenTestSupport
import Storage
import Testing

/// The README's first set-up command, as a user runs it: the `kaizen` binary on its embedded
/// default, first start and second start, operator subcommands, graceful shutdown.
@Suite(.serialized) struct EmbeddedDefaultTests {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kaizen").path
    }

    /// The server's output goes to a file, polled: no pipe that could fill up or need a reader thread.
    struct Output: Sendable {
        let path: String
        var value: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    }

    struct Running {
        let process: Process
        let output: Output
    }

    func start(dataDir: String, port: Int) async throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve"]
        var env = ProcessInfo.processInfo.environment
        env["KAIZEN_DATA_DIR"] = dataDir
        env["KAIZEN_PORT"] = String(port)
        env["KAIZEN_DATABASE_URLS"] = nil
        env["KAIZEN_LOG_LEVEL"] = "info"
        process.environment = env
        let output = Output(path: "\(dataDir)-serve-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output.path))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        let deadline = Date().addingTimeInterval(180)
        while !output.value.contains("listening on") {
            if !process.isRunning {
                Issue.record("kaizen exited: \(output.value)")
                break
            }
            if Date() > deadline {
                let pgLog = (try? String(contentsOfFile: dataDir + "/postgres/server.log", encoding: .utf8)) ?? "(none)"
                Issue.record("kaizen did not start within 180 s.\noutput:\n\(output.value)\npostgres log:\n\(pgLog.suffix(2000))")
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return Running(process: process, output: output)
    }

    func stop(_ running: Running, signal: Int32) async throws -> Int32 {
        kill(running.process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(60)
        while running.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!running.process.isRunning, "kaizen did not stop on signal \(signal)")
        return running.process.terminationStatus
    }

    /// Runs `kaizen` to completion on a GCD thread (never blocking the cooperative pool).
    func cli(_ arguments: [String], dataDir: String) async throws -> (status: Int32, output: String, error: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try cliBlocking(arguments, dataDir: dataDir) })
            }
        }
    }

    func cliBlocking(_ arguments: [String], dataDir: String) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["KAIZEN_DATA_DIR"] = dataDir
        env["KAIZEN_DATABASE_URLS"] = nil
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func firstStartSecondStartAndOperatorCommands() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no kaizen binary at \(Self.binary)")
        let dataDir = "/tmp/kaizen-e2e-\(UUID().uuidString.prefix(8))"
        defer {
            try? FileManager.default.removeItem(atPath: dataDir)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
            where file.hasPrefix(String(dataDir.dropFirst(5))) {
                try? FileManager.default.removeItem(atPath: "/tmp/" + file)
            }
        }
        let port = try EmbeddedPostgres.freePort()
        let base = "http://127.0.0.1:\(port)"

        // First start: provisions PostgreSQL, creates `default` and writes the first token (0600).
        let first = try await start(dataDir: dataDir, port: port)
        #expect(first.output.value.contains("First start: created workspace 'default'"))
        let tokenPath = dataDir + "/first-token.txt"
        let attributes = try FileManager.default.attributesOfItem(atPath: tokenPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = APIClient(baseURL: base, token: token)
        #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)

        // Operators mint tokens and create workspaces while the server runs.
        let minted = try await cli(
            ["token", "create", "--workspace", "default", "--class", "user", "--user", "ops@example.com", "--ttl", "1h",
             "--role", "viewer"], dataDir: dataDir)
        #expect(minted.status == 0, "\(minted.error)")
        let viewer = admin.with(token: minted.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try await viewer.get("/v1/projects").array.count == 1)
        #expect(try await viewer.post("/v1/projects", json: ["slug": "x", "name": "x"]).status == 403)
        let workspace = try await cli(["workspace", "create", "--slug", "acme", "--name", "Acme"], dataDir: dataDir)
        #expect(workspace.status == 0, "\(workspace.error)")
        let duplicate = try await cli(["workspace", "create", "--slug", "acme"], dataDir: dataDir)
        #expect(duplicate.status != 0)
        #expect(duplicate.error.contains("already exists"))

        // SIGTERM: graceful shutdown, and the embedded PostgreSQL it started is stopped.
        #expect(try await stop(first, signal: SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: dataDir + "/postgres/postmaster.pid"))

        // Second start: everything reused, no new token.
        let second = try await start(dataDir: dataDir, port: port)
        #expect(!second.output.value.contains("First start"))
        #expect(try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == token)
        let projects = try await admin.get("/v1/projects")
        #expect(projects.status == 200)
        #expect(projects.array.compactMap { $0["slug"] as? String } == ["web"])
        #expect(try await admin.get("/healthz").status == 200)
        #expect(try await stop(second, signal: SIGINT) == 0)
    }
}
