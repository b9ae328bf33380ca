import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Child processes of the harness: the Kaizen server under test, the bare server, h2load, openssl.
enum Processes {
    /// Starts `arguments` with `environment` added, stdout and stderr appended to `log`.
    static func spawn(_ arguments: [String], environment: [String: String] = [:], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer {
            envp.forEach { free($0) }
            argv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard status == 0 else { throw HarnessError("could not start \(arguments[0]): \(String(cString: strerror(status)))") }
        return pid
    }

    /// Runs a command to completion off the cooperative pool; returns its status and output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let log = NSTemporaryDirectory() + "kaizen-load-\(UUID().uuidString).log"
        defer { unlink(log) }
        let pid = try spawn(arguments, log: log)
        let status = await wait(pid)
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    static func wait(_ pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
            }
        }
    }

    /// Resident and peak resident memory of a process, in bytes (Linux /proc).
    static func memory(of pid: pid_t) -> (rss: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first { Int($0) != nil } ?? "0") ?? 0) * 1024
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }

    /// Starts a new peak for `memory(of:)`: Linux resets VmHWM to the current RSS on "5" in clear_refs.
    static func resetPeak(of pid: pid_t) {
        try? "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
    }

    /// This executable, to re-run it as a child in another role.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
