import CSpawn
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kaizen's one way to start programs: embedded PostgreSQL's tools, `git` for kensho, and the servers,
/// S3 stand-ins and CLIs the tests drive.
///
/// posix_spawn + waitpid, output to files: Foundation's `Process` learns that a child ended when a
/// descriptor shared with it closes, and `pg_ctl start` leaves a postmaster running that inherits that
/// descriptor, so `Process` would wait forever; waiting on the pid does not.
public enum ChildProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    public struct LaunchError: Error, CustomStringConvertible {
        public let program: String
        public let reason: String
        public var description: String { "could not run \(program): \(reason)" }
    }

    /// Runs to completion on a GCD thread: waiting for a child must never block Swift's cooperative pool,
    /// which on a 2-core machine is two threads that every request handler needs.
    public static func runDetached(
        _ arguments: [String], environment extra: [String: String] = [:], directory: String? = nil,
        mergeOutput: Bool = false
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Swift.Result<Result, any Error> {
                        try run(arguments, environment: extra, directory: directory, mergeOutput: mergeOutput)
                    })
            }
        }
    }

    /// Runs to completion, blocking the calling thread (exit handlers, the CLI, `runDetached`).
    /// `environment` is added to this process's own: the way to hand a child a secret, since a
    /// process's environment is readable only by its owner, unlike its command line. `directory` is the
    /// child's working directory. With `mergeOutput`, stderr goes to `stdout` too, interleaved.
    public static func run(
        _ arguments: [String], environment extra: [String: String] = [:], directory: String? = nil,
        mergeOutput: Bool = false
    ) throws -> Result {
        precondition(!arguments.isEmpty)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kaizen-exec-\(UUID().uuidString)").path
        let outPath = scratch + ".out"
        let errPath = mergeOutput ? outPath : scratch + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let pid = try spawn(arguments, environment: extra, directory: directory, stdout: outPath, stderr: errPath)
        let status = wait(pid)
        return Result(
            status: status,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: mergeOutput ? "" : (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Starts a child that runs on after this call: stdin is /dev/null; stdout and stderr go to the given
    /// files (appended; the same path for both interleaves them), or to /dev/null. Wait for it with `wait`.
    public static func spawn(
        _ arguments: [String], environment extra: [String: String] = [:], directory: String? = nil,
        stdout: String? = nil, stderr: String? = nil
    ) throws -> pid_t {
        precondition(!arguments.isEmpty)
        // `env -C` sets the working directory: glibc's posix_spawn_file_actions_addchdir_np is not
        // visible to Swift.
        let argumentsInDirectory = directory.map { ["/usr/bin/env", "-C", $0] + arguments } ?? arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The child gets stdin, stdout and stderr and nothing else. Descriptors Swift, NIO and
        // Foundation open are not close-on-exec (NIO's accepted sockets among them), and a child that
        // inherited a connection's socket keeps it open after the server closes it: the peer never
        // sees the close, and a daemon such as the postmaster would hold it for its whole life.
        _ = kaizen_spawn_add_close_from(&actions, 3)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if let stderr, stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = argumentsInDirectory.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in extra { variables[key] = value }
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, argumentsInDirectory[0], &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw LaunchError(program: arguments[0], reason: String(cString: strerror(spawned)))
        }
        return pid
    }

    /// Waits for a child to end (blocking) and returns its exit status (128 + signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitCode(status)
    }

    /// The exit status of a child that has ended, or nil while it runs (never blocks).
    public static func exited(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return exitCode(status)
    }

    /// WIFEXITED / WEXITSTATUS, spelled out: the macros are not imported into Swift.
    static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
