import ChildProcess
import Domains
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
    /// The cluster's `max_connections` when this call starts it.
    public let maxConnections: Int
    let logger: Logger

    public init(directory: String, database: String = "kaizen", maxConnections: Int = 300, logger: Logger) {
        self.directory = directory
        self.database = database
        self.maxConnections = maxConnections
        self.logger = logger
    }

    public struct Started: Sendable {
        public let url: DatabaseURL
        /// False when a server was already running on this directory (we adopt it, and leave it running).
        public let startedByUs: Bool
    }

    /// Initializes the cluster if needed, starts it on a free loopback port, and creates the database.
    ///
    /// The cluster admits no one without its password (scram-sha-256 on loopback TCP, no Unix
    /// socket): generated at `initdb`, kept in `passwordFile` (0600, in the 0700 data directory), so
    /// another local account can neither connect — let alone `COPY … PROGRAM` as superuser — nor read it.
    /// A cluster made by an older Kaizen with `--auth=trust` gets a password and the same rules on start.
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
        var upgradeFromTrust = false
        let password: String
        if !fm.fileExists(atPath: directory + "/PG_VERSION") {
            logger.info("initializing embedded PostgreSQL", metadata: ["directory": "\(directory)"])
            password = Self.generatePassword()
            // initdb wants an empty directory, so the password reaches it through a file beside it.
            let pwfile = directory + ".initdb-pw"
            try Self.writeSecret(password, to: pwfile, owner: runAs)
            defer { unlink(pwfile) }
            try await Self.exec(
                [
                    "\(bin)/initdb", "-D", directory, "-U", username, "--auth=scram-sha-256", "--pwfile=\(pwfile)", "-E", "UTF8",
                    "--locale=C", "-N",
                ],
                runAs: runAs)
            try Self.writeSecret(password, to: passwordFile, owner: runAs)
        } else if let stored = try? String(contentsOfFile: passwordFile, encoding: .utf8), !stored.isEmpty {
            password = stored.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            password = Self.generatePassword()
            upgradeFromTrust = true
        }
        let hbaChanged = try writeHBA(owner: runAs)
        var startedByUs = false
        var port: Int
        if let running = runningPort() {
            port = running
            logger.info("adopting running embedded PostgreSQL", metadata: ["port": "\(port)"])
        } else {
            port = try Self.freePort()
            let options = [
                "-c listen_addresses=127.0.0.1", "-p \(port)", "-c unix_socket_directories=''",
                "-c max_connections=\(maxConnections)", "-c shared_buffers=256MB", "-c fsync=on",
                "-c password_encryption=scram-sha-256",
            ].joined(separator: " ")
            // An older cluster is started on the old rules once, to be given its password.
            if upgradeFromTrust { try writeHBA(owner: runAs, method: "trust") }
            try await Self.exec(
                ["\(bin)/pg_ctl", "-D", directory, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options, "start"],
                runAs: runAs)
            startedByUs = true
        }
        if upgradeFromTrust {
            logger.info("embedded PostgreSQL: replacing trust authentication with a password")
            try await setPassword(password, port: port, bin: bin, runAs: runAs)
            try Self.writeSecret(password, to: passwordFile, owner: runAs)
            try writeHBA(owner: runAs)
        }
        if upgradeFromTrust || hbaChanged {
            try await Self.exec(["\(bin)/pg_ctl", "-D", directory, "reload"], runAs: runAs)
        }
        try await createDatabaseIfNeeded(port: port, bin: bin, runAs: runAs, password: password)
        return Started(
            url: DatabaseURL(host: "127.0.0.1", port: port, username: username, password: password, database: database),
            startedByUs: startedByUs)
    }

    /// Makes the directory holding the cluster owner-only: 0700, or, when we are root and
    /// PostgreSQL runs as `postgres`, 0710 with the `postgres` group (it must traverse it, nothing more).
    public static func restrictParent(_ path: String) throws {
        if getuid() == 0, let group = getgrnam("postgres") {
            guard posixChown(path, 0, group.pointee.gr_gid) == 0, chmod(path, 0o710) == 0 else {
                throw StorageError.embedded("cannot restrict \(path): \(String(cString: strerror(errno)))")
            }
        } else if chmod(path, 0o700) != 0 {
            throw StorageError.embedded("cannot restrict \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Where the superuser's password is kept: inside the 0700 data directory, mode 0600.
    public var passwordFile: String { directory + "/kaizen.password" }

    static func generatePassword() -> String {
        var rng = SystemRandomNumberGenerator()
        return Hex.string((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    /// Writes `secret` to a new file that only its owner can read (created 0600, never wider).
    static func writeSecret(_ secret: String, to path: String, owner: String?) throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw StorageError.embedded("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(secret.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw StorageError.embedded("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        if let owner, let pw = getpwnam(owner) { fchown(fd, pw.pointee.pw_uid, pw.pointee.pw_gid) }
    }

    /// Loopback TCP with a password, nothing else. True when the file changed.
    @discardableResult
    func writeHBA(owner: String?, method: String = "scram-sha-256") throws -> Bool {
        let path = directory + "/pg_hba.conf"
        let content = """
            # Written by Kaizen: loopback TCP with a password only (there is no Unix socket).
            host all all 127.0.0.1/32 \(method)
            host all all ::1/128 \(method)

            """
        if (try? String(contentsOfFile: path, encoding: .utf8)) == content { return false }
        try Self.writeSecret(content, to: path, owner: owner)
        return true
    }

    /// Sets the superuser's password through a 0600 SQL file (never on a command line).
    func setPassword(_ password: String, port: Int, bin: String, runAs: String?) async throws {
        let script = directory + "/.kaizen-set-password.sql"
        try Self.writeSecret("ALTER ROLE \"\(username)\" PASSWORD '\(password)';\n", to: script, owner: runAs)
        defer { unlink(script) }
        let psql = FileManager.default.isExecutableFile(atPath: "\(bin)/psql") ? "\(bin)/psql" : "psql"
        try await Self.exec([psql, "-h", "127.0.0.1", "-p", "\(port)", "-U", username, "-d", "postgres", "-qf", script], runAs: runAs)
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

    func createDatabaseIfNeeded(port: Int, bin: String, runAs: String?, password: String) async throws {
        let psql = FileManager.default.isExecutableFile(atPath: "\(bin)/psql") ? "\(bin)/psql" : "psql"
        let base = [psql, "-h", "127.0.0.1", "-p", "\(port)", "-U", username, "-d", "postgres", "-tAc"]
        let env = ["PGPASSWORD": password]
        let exists = try await Self.exec(
            base + ["SELECT 1 FROM pg_database WHERE datname = '\(database)'"], runAs: runAs, environment: env)
        if exists.trimmingCharacters(in: .whitespacesAndNewlines) != "1" {
            try await Self.exec(base + ["CREATE DATABASE \"\(database)\""], runAs: runAs, environment: env)
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
        // A directory the user owns already holds only what PostgreSQL (running as that user) wrote: a
        // recursive chown there would race the live server's temporary files, and has nothing to do.
        var info = stat()
        if stat(path, &info) == 0, info.st_uid == pw.pointee.pw_uid { return }
        try await exec(["/bin/chown", "-R", "\(pw.pointee.pw_uid):\(pw.pointee.pw_gid)", path], runAs: nil)
    }

    /// Runs a command to completion off the cooperative pool, returning stdout.
    @discardableResult
    static func exec(_ arguments: [String], runAs: String?, environment: [String: String] = [:]) async throws -> String {
        let args = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] + arguments } ?? arguments
        do {
            return try check(arguments, try await ChildProcess.runDetached(args, environment: environment))
        } catch let error as ChildProcess.LaunchError {
            throw StorageError.embedded(error.description)
        }
    }

    /// Blocking variant, for exit handlers and shutdown paths that are not async.
    @discardableResult
    static func execBlocking(_ arguments: [String], runAs: String?) throws -> String {
        let args = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] + arguments } ?? arguments
        do {
            return try check(arguments, try ChildProcess.run(args))
        } catch let error as ChildProcess.LaunchError {
            throw StorageError.embedded(error.description)
        }
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

/// The C library's chown (the name is taken by `EmbeddedPostgres.chown` inside the type).
private func posixChown(_ path: String, _ owner: uid_t, _ group: gid_t) -> Int32 {
    chown(path, owner, group)
}
