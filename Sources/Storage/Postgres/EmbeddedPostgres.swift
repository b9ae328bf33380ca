import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL cluster under a directory of ours: the embedded default when no
/// `KAIZEN_DATABASE_URLS` is configured, and the throwaway servers of the test harness.
///
/// PostgreSQL refuses to run as root, so when we are root every command runs as the
/// `postgres` system user (`runuser -u postgres`) on a directory that user owns.
public struct EmbeddedPostgres: Sendable {
    public let directory: String
    public let database: String
    public let username = "kaizen"
    let logger: Logger

    public init(directory: String, database: String = "kaizen", logger: Logger) {
        self.directory = directory
        self.database = database
        self.logger = logger
    }

    public struct Started: Sendable {
        public let url: DatabaseURL
        /// False when a server was already running on this directory (we adopt it, and leave it running).
        public let startedByUs: Bool
    }

    /// Initializes the cluster if needed, starts it on a free loopback port, and creates the database.
    public func start() async throws -> Started {
        let bin = try Self.binDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let runAs = getuid() == 0 ? "postgres" : nil
        if let runAs {
            try await Self.chown(directory, to: runAs)
            // The postgres user must be able to reach the directory through every parent.
            if (try? await Self.exec(["/usr/bin/test", "-w", directory], runAs: runAs)) == nil {
                throw StorageError.embedded(
                    "the '\(runAs)' user cannot write \(directory) (a parent directory is not traversable); "
                        + "set KAIZEN_DATA_DIR to a directory it can reach, or configure KAIZEN_DATABASE_URLS")
            }
        }
        chmod(directory, 0o700)
        if !fm.fileExists(atPath: directory + "/PG_VERSION") {
            logger.info("initializing embedded PostgreSQL", metadata: ["directory": "\(directory)"])
            try await Self.exec(
                ["\(bin)/initdb", "-D", directory, "-U", username, "--auth=trust", "-E", "UTF8", "--locale=C", "-N"],
                runAs: runAs)
        }
        var startedByUs = false
        var port: Int
        if let running = runningPort() {
            port = running
            logger.info("adopting running embedded PostgreSQL", metadata: ["port": "\(port)"])
        } else {
            port = try Self.freePort()
            let options = [
                "-c listen_addresses=127.0.0.1", "-p \(port)", "-c unix_socket_directories=''",
                "-c max_connections=300", "-c shared_buffers=256MB", "-c fsync=on",
            ].joined(separator: " ")
            try await Self.exec(
                ["\(bin)/pg_ctl", "-D", directory, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options, "start"],
                runAs: runAs)
            startedByUs = true
        }
        try await createDatabaseIfNeeded(port: port, bin: bin, runAs: runAs)
        return Started(
            url: DatabaseURL(host: "127.0.0.1", port: port, username: username, database: database), startedByUs: startedByUs)
    }

    /// Stops the server (fast shutdown: sessions are ended, data is flushed).
    public func stop() async {
        guard let bin = try? Self.binDirectory() else { return }
        do {
            try await Self.exec(["\(bin)/pg_ctl", "-D", directory, "-m", "fast", "-w", "stop"], runAs: Self.runAsUser)
        } catch {
            logger.warning("could not stop embedded PostgreSQL: \(error)")
        }
    }

    /// `stop()` for exit handlers, which cannot await.
    public func stopBlocking() {
        guard let bin = try? Self.binDirectory() else { return }
        _ = try? Self.execBlocking(["\(bin)/pg_ctl", "-D", directory, "-m", "fast", "-w", "stop"], runAs: Self.runAsUser)
    }

    static var runAsUser: String? { getuid() == 0 ? "postgres" : nil }

    /// The port from `postmaster.pid` when a live postmaster owns the directory.
    func runningPort() -> Int? {
        guard let pidFile = try? String(contentsOfFile: directory + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = pidFile.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 3, let pid = Int32(lines[0].trimmingCharacters(in: .whitespaces)),
            let port = Int(lines[3].trimmingCharacters(in: .whitespaces))
        else { return nil }
        // kill(pid, 0) checks the process exists without signalling it.
        return kill(pid, 0) == 0 ? port : nil
    }

    func createDatabaseIfNeeded(port: Int, bin: String, runAs: String?) async throws {
        let psql = FileManager.default.isExecutableFile(atPath: "\(bin)/psql") ? "\(bin)/psql" : "psql"
        let base = [psql, "-h", "127.0.0.1", "-p", "\(port)", "-U", username, "-d", "postgres", "-tAc"]
        let exists = try await Self.exec(base + ["SELECT 1 FROM pg_database WHERE datname = '\(database)'"], runAs: runAs)
        if exists.trimmingCharacters(in: .whitespacesAndNewlines) != "1" {
            try await Self.exec(base + ["CREATE DATABASE \"\(database)\""], runAs: runAs)
        }
    }

    // MARK: - helpers

    /// Where `initdb` and `pg_ctl` live: `PATH` first, then Debian's `/usr/lib/postgresql/<major>/bin`.
    public static func binDirectory() throws -> String {
        let fm = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where fm.isExecutableFile(atPath: "\(dir)/initdb") {
            if fm.isExecutableFile(atPath: "\(dir)/pg_ctl") { return String(dir) }
        }
        let root = "/usr/lib/postgresql"
        let majors = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for major in majors where fm.isExecutableFile(atPath: "\(root)/\(major)/bin/initdb") {
            return "\(root)/\(major)/bin"
        }
        throw StorageError.embedded(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql; "
                + "install them (apt-get install postgresql) or set KAIZEN_DATABASE_URLS")
    }

    /// A TCP port on 127.0.0.1 that is free right now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StorageError.embedded("socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw StorageError.embedded("could not find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func chown(_ path: String, to user: String) async throws {
        guard let pw = getpwnam(user) else {
            throw StorageError.embedded("running as root, but there is no '\(user)' system user to run PostgreSQL as")
        }
        try await exec(["/bin/chown", "-R", "\(pw.pointee.pw_uid):\(pw.pointee.pw_gid)", path], runAs: nil)
    }

    /// Runs a command to completion off the cooperative pool, returning stdout.
    @discardableResult
    static func exec(_ arguments: [String], runAs: String?) async throws -> String {
        let args = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] + arguments } ?? arguments
        return try check(arguments, try await ChildProcess.runDetached(args))
    }

    /// Blocking variant, for exit handlers and shutdown paths that are not async.
    @discardableResult
    static func execBlocking(_ arguments: [String], runAs: String?) throws -> String {
        let args = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] + arguments } ?? arguments
        return try check(arguments, try ChildProcess.run(args))
    }

    private static func check(_ arguments: [String], _ result: ChildProcess.Result) throws -> String {
        guard result.status == 0 else {
            throw StorageError.embedded(
                "\(arguments.first ?? "") failed (exit \(result.status)): "
                    + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }
}
