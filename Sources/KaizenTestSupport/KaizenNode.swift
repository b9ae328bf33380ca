import ChildProcess
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `kaizen serve` process, the way operators run it: for the tests where the process boundary is the
/// point (crash recovery, the embedded default, several nodes on the same databases). Its output goes to
/// a file, polled: no pipe that could fill up or need a reader thread.
public final class KaizenNode: Sendable {
    public let pid: pid_t
    public let port: Int
    public let logPath: String

    /// The `kaizen` executable built next to the test bundle.
    public static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kaizen").path
    }

    init(pid: pid_t, port: Int, logPath: String) {
        self.pid = pid
        self.port = port
        self.logPath = logPath
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { Glibc.kill(pid, 0) == 0 && ChildProcess.exited(pid) == nil }

    /// Starts `kaizen serve` with `environment` added to this process's (`KAIZEN_PORT` is set to `port`) and
    /// waits until it says it is listening. Throws, with its output, when it exits or takes longer than
    /// `startTimeout` (generous: a loaded CI machine may take a while to start PostgreSQL).
    public static func start(
        port: Int, environment: [String: String], logPath: String, startTimeout: Duration = .seconds(180)
    ) async throws -> KaizenNode {
        var env = environment
        env["KAIZEN_PORT"] = String(port)
        // As `TestServer`: no finalize waits for roll-ups (some tests kill a node in the middle of one) unless asked.
        if env["KAIZEN_ROLLUP_MAX_LAG_SECONDS"] == nil { env["KAIZEN_ROLLUP_MAX_LAG_SECONDS"] = "0" }
        let pid = try ChildProcess.spawn([binary, "serve"], environment: env, stdout: logPath, stderr: logPath)
        let node = KaizenNode(pid: pid, port: port, logPath: logPath)
        let deadline = ContinuousClock.now + startTimeout
        while !node.output.contains("listening on") {
            if let status = ChildProcess.exited(pid) {
                throw NodeError("kaizen exited (status \(status)) before listening:\n\(node.output.suffix(4000))")
            }
            if ContinuousClock.now > deadline {
                node.kill()
                throw NodeError("kaizen did not start within \(startTimeout):\n\(node.output.suffix(4000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return node
    }

    /// Sends `signal` and waits (off the cooperative pool) for the exit status; nil when it did not exit
    /// within `timeout`.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(60)) async -> Int32? {
        Glibc.kill(pid, signal)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = ChildProcess.exited(pid) { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// SIGKILL, and reap it.
    public func kill() {
        Glibc.kill(pid, SIGKILL)
        _ = ChildProcess.wait(pid)
    }

    public struct NodeError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
