import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// One PostgreSQL server (embedded, under a scratch directory) shared by every scenario, and
/// Kaizen servers started as child processes on it, so their memory is measured alone.
final class LoadEnvironment: Sendable {
    let root: String
    let postgres: EmbeddedPostgres
    let certificate: String
    let key: String
    let logger: Logger

    static func start() async throws -> LoadEnvironment {
        var logger = Logger(label: "kaizen-load")
        logger.logLevel = .error
        let root = "/tmp/kaizen-load-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
        let postgres = EmbeddedPostgres(directory: root + "/pg", database: "postgres", logger: logger)
        _ = try await postgres.start()
        let (certificate, key) = (root + "/cert.pem", root + "/key.pem")
        let openssl = try await Processes.run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ])
        guard openssl.status == 0 else { throw HarnessError("openssl failed: \(openssl.output)") }
        return LoadEnvironment(root: root, postgres: postgres, certificate: certificate, key: key, logger: logger)
    }

    init(root: String, postgres: EmbeddedPostgres, certificate: String, key: String, logger: Logger) {
        self.root = root
        self.postgres = postgres
        self.certificate = certificate
        self.key = key
        self.logger = logger
    }

    /// A fresh database on the shared server.
    func database(_ name: String) async throws -> DatabaseURL {
        try await EmbeddedPostgres(directory: root + "/pg", database: name, logger: logger).start().url
    }

    /// Sets parameters on a database for the sessions opened after this.
    func configure(_ url: DatabaseURL, _ settings: [String: String]) async throws {
        let servers = try StorageCluster.makeServers(urls: [url], maxConnectionsPerServer: 1, logger: logger)
        let pools = Task { await StorageCluster.runPools(servers) }
        defer { pools.cancel() }
        let logger = self.logger
        try await servers[0].run { connection in
            for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
                try await connection.query(
                    PostgresQuery(unsafeSQL: "ALTER DATABASE \"\(url.database)\" SET \(key) = '\(value)'"), logger: logger)
            }
        }
    }

    func stop() async {
        await postgres.stop()
        // With a chosen server log level, the servers' logs are what was asked for: they outlive the run.
        if ProcessInfo.processInfo.environment["KAIZEN_LOAD_SERVER_LOG_LEVEL"] != nil {
            let kept = root + "-logs"
            try? FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where name.hasSuffix(".log") {
                try? FileManager.default.moveItem(atPath: root + "/" + name, toPath: kept + "/" + name)
            }
            FileHandle.standardError.write(Data("kaizen-load: the servers' logs are in \(kept)\n".utf8))
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// A Kaizen server in a child process (this executable in its `_server` role).
final class KaizenProcess: Sendable {
    let pid: pid_t
    let port: Int
    let tlsPort: Int
    let token: String
    let databaseURL: DatabaseURL
    let dataDirectory: String

    var plaintextURL: String { "http://127.0.0.1:\(port)" }
    var tlsURL: String { "https://127.0.0.1:\(tlsPort)" }

    init(pid: pid_t, port: Int, tlsPort: Int, token: String, databaseURL: DatabaseURL, dataDirectory: String) {
        self.pid = pid
        self.port = port
        self.tlsPort = tlsPort
        self.token = token
        self.databaseURL = databaseURL
        self.dataDirectory = dataDirectory
    }

    /// Starts a server on a new database; `settings` are extra `KAIZEN_*` variables.
    /// `databaseSettings` are set on the new database (`ALTER DATABASE … SET`) before the server connects.
    static func start(
        _ environment: LoadEnvironment, name: String, settings: [String: String] = [:], databaseSettings: [String: String] = [:]
    ) async throws -> KaizenProcess {
        let url = try await environment.database(name)
        if !databaseSettings.isEmpty { try await environment.configure(url, databaseSettings) }
        let (port, tlsPort) = (try EmbeddedPostgres.freePort(), try EmbeddedPostgres.freePort())
        let data = environment.root + "/\(name)-data"
        var env = [
            "KAIZEN_DATABASE_URLS": url.connectionString, "KAIZEN_PORT": "\(port)",
            "KAIZEN_TLS_PORT": "\(tlsPort)", "KAIZEN_TLS_CERT": environment.certificate, "KAIZEN_TLS_KEY": environment.key,
            "KAIZEN_DATA_DIR": data, "KAIZEN_SHARDS": "16",
            // KAIZEN_LOAD_SERVER_LOG_LEVEL=debug shows, among others, where each roll-up's time goes.
            "KAIZEN_LOG_LEVEL": ProcessInfo.processInfo.environment["KAIZEN_LOAD_SERVER_LOG_LEVEL"] ?? "warning",
            "KAIZEN_MAX_BODY_BYTES": "\(256 << 20)",
            // Presigned upload URLs on the TLS port, so uploads travel over HTTP/2 too.
            "KAIZEN_PUBLIC_URL": "https://127.0.0.1:\(tlsPort)",
        ]
        for (key, value) in settings { env[key] = value }
        let pid = try Processes.spawn([Processes.selfPath, "_server"], environment: env, log: environment.root + "/\(name).log")
        let deadline = now() + 120
        while now() < deadline {
            var probe = HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz")
            probe.method = .GET
            if let response = try? await HTTPClient.shared.execute(probe, timeout: .seconds(2)), response.status == .ok,
                let token = try? String(contentsOfFile: data + "/first-token.txt", encoding: .utf8)
            {
                return KaizenProcess(
                    pid: pid, port: port, tlsPort: tlsPort, token: token.trimmingCharacters(in: .whitespacesAndNewlines),
                    databaseURL: url, dataDirectory: data)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw HarnessError("the Kaizen server exited at start; see \(environment.root)/\(name).log")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("the Kaizen server did not become healthy within 120 s")
    }

    /// Starts a server, runs `body` with it, and stops it whether `body` succeeded or threw.
    static func with(
        _ environment: LoadEnvironment, name: String, settings: [String: String] = [:], databaseSettings: [String: String] = [:],
        _ body: (KaizenProcess) async throws -> Void
    ) async throws {
        let server = try await start(environment, name: name, settings: settings, databaseSettings: databaseSettings)
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    var memory: (rss: Int, peak: Int) { Processes.memory(of: pid) }
    func resetPeak() { Processes.resetPeak(of: pid) }

    func stop() async {
        kill(pid, SIGTERM)
        _ = await Processes.wait(pid)
    }
}

/// An HTTP client for the load: HTTP/2 over TLS (ALPN) to the server's TLS port, which presents a
/// self-signed certificate made for this run.
func makeLoadClient() -> HTTPClient {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.certificateVerification = .none
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.httpVersion = .automatic
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(600))
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}

extension DatabaseURL {
    var connectionString: String {
        "postgres://\(username)\(password.map { ":\($0)" } ?? "")@\(host):\(port)/\(database)"
    }
}
