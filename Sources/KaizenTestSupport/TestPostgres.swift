import Foundation
import Logging
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// Two throwaway PostgreSQL servers for the whole test process, started on first use under
/// `/tmp/kaizen-tests-<pid>/` and stopped when the process exits. Each test gets fresh databases
/// on both, so tests run in parallel without seeing each other's rows.
public actor TestPostgres {
    public static let shared = TestPostgres()

    public static let serverCount = 2
    static var root: String { "/tmp/kaizen-tests-\(getpid())" }
    /// One start-up shared by every caller: the actor is reentrant across the awaits inside.
    private var startup: Task<Void, any Error>?
    private var counter = 0
    let logger: Logger = {
        var logger = Logger(label: "kaizen.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// Directory of server `index`.
    public static func directory(_ index: Int) -> String { "\(root)/pg\(index)" }

    private func ensureStarted() async throws {
        if startup == nil {
            let logger = self.logger
            startup = Task { try await Self.startServers(logger: logger) }
        }
        try await startup?.value
    }

    private static func startServers(logger: Logger) async throws {
        Self.cleanUpStaleRuns()
        try FileManager.default.createDirectory(atPath: Self.root, withIntermediateDirectories: true)
        chmod(Self.root, 0o755)
        for index in 0..<Self.serverCount {
            // Dozens of test servers, each with its pools and background services, share these two clusters (800
            // was once exhausted by a full run).
            _ = try await EmbeddedPostgres(directory: Self.directory(index), database: "postgres", maxConnections: 1500, logger: logger).start()
        }
        atexit {
            for index in 0..<TestPostgres.serverCount {
                EmbeddedPostgres(directory: TestPostgres.directory(index), logger: Logger(label: "kaizen.tests")).stopBlocking()
            }
            try? FileManager.default.removeItem(atPath: TestPostgres.root)
        }
    }

    /// Fresh, empty databases: one per server, in server order.
    public func freshDatabases(count: Int = TestPostgres.serverCount) async throws -> [DatabaseURL] {
        try await ensureStarted()
        counter += 1
        let name = "t\(getpid())_\(counter)"
        var urls: [DatabaseURL] = []
        for index in 0..<min(count, Self.serverCount) {
            let started = try await EmbeddedPostgres(directory: Self.directory(index), database: name, logger: logger).start()
            urls.append(started.url)
        }
        return urls
    }

    /// Stops and removes clusters left by test processes that died without their exit handler.
    static func cleanUpStaleRuns() {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: "/tmp") else { return }
        for entry in entries where entry.hasPrefix("kaizen-tests-") {
            guard let pid = Int32(entry.dropFirst("kaizen-tests-".count)), pid != getpid(), kill(pid, 0) != 0 else {
                continue
            }
            for index in 0..<serverCount {
                EmbeddedPostgres(directory: "/tmp/\(entry)/pg\(index)", logger: Logger(label: "kaizen.tests")).stopBlocking()
            }
            try? fm.removeItem(atPath: "/tmp/\(entry)")
        }
    }
}
