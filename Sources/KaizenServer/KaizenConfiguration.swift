import Configuration
import Domains
import Foundation
import Storage
import Tenancy

/// Everything an operator can set, read from `KAIZEN_*` environment variables (see README) through
/// swift-configuration: `from(_:)` takes any `ConfigReader`, so other sources (a file, command-line
/// arguments) layer in front of the environment without touching this code. Values are validated here,
/// with messages that name the variable and what it must be.
public struct KaizenConfiguration: Sendable {
    public var dataDirectory: String = "./.kaizen"
    public var host: String = "127.0.0.1"
    /// Plaintext port serving HTTP/1.1 and h2c. 0 picks a free port (tests).
    public var port: Int = 8080
    /// Nil: the embedded PostgreSQL under the data directory.
    public var databaseURLs: [DatabaseURL]?
    public var logicalShards: Int = 16
    public var maxConnectionsPerServer: Int = 40
    /// How long a request waits for a database connection before it is answered 503.
    public var dbAcquireTimeoutSeconds: Double = 5
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    public var tlsPort: Int = 8443
    public var userRateLimit = RateLimit(perMinute: 600)
    public var workspaceRateLimit = RateLimit(perMinute: 6000)
    public var maxBodyBytes: Int = 64 * 1024 * 1024
    public var finalizeQuota = RateLimit(perMinute: 60)
    /// Webhook destinations may be plain http (tests, closed networks); otherwise https only.
    public var webhookAllowHTTP = false
    /// Internal networks webhooks may reach anyway (e.g. `127.0.0.0/8` for a receiver on the same host).
    public var webhookNetworks = NetworkPolicy()
    /// A webhook receiver must connect and answer within this.
    public var webhookTimeoutSeconds: Double = 10
    /// The first retry of a failed delivery waits this long (then twice as long each time, at most an hour).
    public var webhookFirstRetrySeconds: Double = 10
    /// Live streams send a keep-alive this often while nothing happens (and check their credential then).
    public var streamHeartbeatSeconds: Double = 15
    /// How long a sharded run waits for its next shard before it is closed as partial.
    public var shardTimeoutSeconds: Int = 7_200
    public var maxAttachmentBytes: Int64 = 1 << 30
    public var actorIdleSeconds: Double = 300
    /// A workspace's ingest caches (case ids, baselines) unused this long are dropped, memory given back.
    public var ingestCacheIdleSeconds: Double = 30
    public var authCacheSeconds: Double = 5
    /// How often each node writes when tokens were last used (`lastUsedAt` is this fresh).
    public var tokenUseFlushSeconds: Double = 60
    /// On SIGTERM, how long in-flight requests may take before the rest is cancelled.
    public var shutdownGraceSeconds: Double = 30
    public var publicURL: String?
    public var logLevel: String = "info"
    /// Nil: attachments on the local filesystem under the data directory.
    public var s3: S3Configuration?
    public var workspaceCreation: WorkspaceCreationPolicy = .members
    /// A connection with no request in flight (HTTP/1.1) or no open stream (HTTP/2) is closed after this.
    public var idleTimeoutSeconds: Double = 60
    /// How long a job claim lasts unless its worker renews it; a crashed node's jobs run elsewhere after this.
    public var jobLeaseSeconds: Double = 15
    /// Roll-ups running at once per database server (one per project at a time).
    public var rollUpLanes: Int = 2
    /// How far a project's roll-ups may fall behind before its finalizes wait (`RollUpBackpressure`). By default a
    /// finalize waits (at most 10 s) while its project's oldest run waiting for its roll-up is more than a second
    /// old: under a push two cores cannot also roll up, intelligence then stays seconds fresh for about a fifth
    /// fewer cases per second; `KAIZEN_ROLLUP_MAX_LAG_SECONDS=0` trades that back.
    public var rollUpBackpressure: RollUpBackpressure = .standard
    /// Clocks (monotonic nanoseconds) of the rate limits and of the per-workspace quotas; nil is the
    /// real clock. Tests inject their own so that nothing depends on how fast the machine is.
    public var rateLimitClock: (@Sendable () -> UInt64)?
    /// How often full rate-limit buckets are forgotten. Each sweep reads `rateLimitClock`: a test whose clock
    /// moves on every read sets this beyond its own length, so only its requests move the clock.
    public var rateLimitSweepSeconds: Double = 30
    public var quotaClock: (@Sendable () -> UInt64)?
    /// A new connection must send its first bytes within this time.
    public var headerTimeoutSeconds: Double = 10
    /// bcrypt's cost (log2 of its rounds) for new password hashes; existing hashes keep theirs.
    public var bcryptCost: Int = 12
    /// How long a sign-in session (`POST /v1/auth/login`) lasts.
    public var sessionSeconds: Int = TokenRules.defaultUserTTLSeconds
    /// Failed sign-ins allowed in a burst per account, and per client address, before 429; they come back
    /// at `signInRefillPerMinute` per minute.
    public var signInBurst: Int = 5
    public var signInAddressBurst: Int = 20
    public var signInRefillPerMinute: Double = 2

    public init() {}

    /// Variables whose values are never printed by configuration access reporting.
    static let secretVariables: Set<String> = [
        "KAIZEN_DATABASE_URLS", "KAIZEN_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "KAIZEN_S3_SESSION_TOKEN",
        "AWS_SESSION_TOKEN",
    ]

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
        -> KaizenConfiguration
    {
        try from(
            ConfigReader(
                provider: EnvironmentVariablesProvider(
                    environmentVariables: env, secretsSpecifier: .specific(secretVariables))))
    }

    /// `KAIZEN_PORT` is the key `kaizen.port`, and so on.
    public static func from(_ reader: ConfigReader) throws -> KaizenConfiguration {
        let env = Variables(reader: reader)
        var config = KaizenConfiguration()
        func int(_ key: String) throws -> Int? {
            guard let raw = env[key], !raw.isEmpty else { return nil }
            guard let value = Int(raw), value >= 0 else {
                throw StorageError.configuration("\(key) must be a non-negative integer, got '\(raw)'")
            }
            return value
        }
        func double(_ key: String) throws -> Double? {
            guard let raw = env[key], !raw.isEmpty else { return nil }
            // Infinity is not a duration: converted to nanoseconds it would trap at start-up.
            guard let value = Double(raw), value.isFinite, value >= 0 else {
                throw StorageError.configuration("\(key) must be a non-negative number, got '\(raw)'")
            }
            return value
        }
        if let v = env["KAIZEN_DATA_DIR"], !v.isEmpty { config.dataDirectory = v }
        if let v = env["KAIZEN_HOST"], !v.isEmpty { config.host = v }
        if let v = try int("KAIZEN_PORT") { config.port = v }
        if let v = env["KAIZEN_DATABASE_URLS"], !v.trimmingCharacters(in: .whitespaces).isEmpty {
            config.databaseURLs = try DatabaseURL.parseList(v)
        }
        if let v = try int("KAIZEN_SHARDS") { config.logicalShards = max(1, v) }
        if let v = try int("KAIZEN_DB_MAX_CONNECTIONS") { config.maxConnectionsPerServer = max(1, v) }
        if let v = try double("KAIZEN_DB_ACQUIRE_TIMEOUT_SECONDS") { config.dbAcquireTimeoutSeconds = max(0.1, v) }
        config.tlsCertificatePath = env["KAIZEN_TLS_CERT"].flatMap { $0.isEmpty ? nil : $0 }
        config.tlsKeyPath = env["KAIZEN_TLS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if (config.tlsCertificatePath == nil) != (config.tlsKeyPath == nil) {
            throw StorageError.configuration("set both KAIZEN_TLS_CERT and KAIZEN_TLS_KEY, or neither")
        }
        if let v = try int("KAIZEN_TLS_PORT") { config.tlsPort = v }
        if let v = try int("KAIZEN_RATE_LIMIT_USER") { config.userRateLimit.perMinute = max(1, v) }
        if let v = try int("KAIZEN_RATE_LIMIT_WORKSPACE") { config.workspaceRateLimit.perMinute = max(1, v) }
        if let v = try double("KAIZEN_RATE_LIMIT_BURST_SECONDS") {
            config.userRateLimit.burstSeconds = v
            config.workspaceRateLimit.burstSeconds = v
        }
        if let v = try int("KAIZEN_MAX_BODY_BYTES") { config.maxBodyBytes = max(1024, v) }
        if let v = try int("KAIZEN_FINALIZE_QUOTA") { config.finalizeQuota.perMinute = max(1, v) }
        if let v = env["KAIZEN_WEBHOOK_ALLOW_HTTP"], !v.isEmpty { config.webhookAllowHTTP = ["1", "true", "yes"].contains(v.lowercased()) }
        if let v = env["KAIZEN_WEBHOOK_ALLOWED_NETWORKS"], !v.isEmpty {
            do {
                config.webhookNetworks = try NetworkPolicy.parse(v)
            } catch let error as DomainError {
                throw StorageError.configuration("KAIZEN_WEBHOOK_ALLOWED_NETWORKS: \(error.message)")
            }
        }
        if let v = try double("KAIZEN_WEBHOOK_TIMEOUT_SECONDS") { config.webhookTimeoutSeconds = min(max(1, v), 60) }
        if let v = try double("KAIZEN_WEBHOOK_FIRST_RETRY_SECONDS") { config.webhookFirstRetrySeconds = min(max(0.1, v), 3600) }
        if let v = try double("KAIZEN_STREAM_HEARTBEAT_SECONDS") { config.streamHeartbeatSeconds = min(max(0.05, v), 300) }
        if let v = try int("KAIZEN_SHARD_TIMEOUT_SECONDS") { config.shardTimeoutSeconds = min(max(1, v), 7 * 86_400) }
        if let v = try int("KAIZEN_MAX_ATTACHMENT_BYTES") { config.maxAttachmentBytes = Int64(v) }
        if let v = try double("KAIZEN_ACTOR_IDLE_SECONDS") { config.actorIdleSeconds = v }
        if let v = try double("KAIZEN_INGEST_CACHE_IDLE_SECONDS") { config.ingestCacheIdleSeconds = max(1, v) }
        if let v = try double("KAIZEN_AUTH_CACHE_SECONDS") { config.authCacheSeconds = v }
        if let v = try double("KAIZEN_TOKEN_USE_FLUSH_SECONDS") { config.tokenUseFlushSeconds = min(max(1, v), 86_400) }
        if let v = try double("KAIZEN_SHUTDOWN_GRACE_SECONDS") { config.shutdownGraceSeconds = v }
        if let v = env["KAIZEN_PUBLIC_URL"], !v.isEmpty { config.publicURL = v }
        if let v = env["KAIZEN_LOG_LEVEL"], !v.isEmpty { config.logLevel = v }
        config.s3 = try s3Configuration(env)
        if let v = try double("KAIZEN_JOB_LEASE_SECONDS") { config.jobLeaseSeconds = max(1, v) }
        if let v = try int("KAIZEN_ROLLUP_LANES") { config.rollUpLanes = min(max(1, v), 64) }
        // Each variable overrides its part of the default policy.
        let policy = config.rollUpBackpressure
        config.rollUpBackpressure = RollUpBackpressure(
            maxPending: min(max(0, try int("KAIZEN_ROLLUP_MAX_BACKLOG") ?? policy.maxPending), 10_000),
            maxLagSeconds: try double("KAIZEN_ROLLUP_MAX_LAG_SECONDS") ?? policy.maxLagSeconds,
            maxWaitSeconds: try double("KAIZEN_ROLLUP_BACKLOG_WAIT_SECONDS") ?? policy.maxWaitSeconds)
        if let v = try double("KAIZEN_IDLE_TIMEOUT_SECONDS") { config.idleTimeoutSeconds = max(1, v) }
        if let v = try double("KAIZEN_HEADER_TIMEOUT_SECONDS") { config.headerTimeoutSeconds = max(1, v) }
        if let v = try int("KAIZEN_BCRYPT_COST") {
            guard (10...16).contains(v) else { throw StorageError.configuration("KAIZEN_BCRYPT_COST must be between 10 and 16, got \(v)") }
            config.bcryptCost = v
        }
        if let v = try int("KAIZEN_SESSION_SECONDS") { config.sessionSeconds = min(max(300, v), TokenRules.maxUserTTLSeconds) }
        if let v = try int("KAIZEN_SIGNIN_ATTEMPTS") { config.signInBurst = max(1, v) }
        if let v = try int("KAIZEN_SIGNIN_ATTEMPTS_PER_ADDRESS") { config.signInAddressBurst = max(1, v) }
        if let v = env["KAIZEN_WORKSPACE_CREATION"], !v.isEmpty {
            guard let policy = WorkspaceCreationPolicy(rawValue: v.lowercased()) else {
                throw StorageError.configuration("KAIZEN_WORKSPACE_CREATION must be 'members' or 'operators', got '\(v)'")
            }
            config.workspaceCreation = policy
        }
        return config
    }

    /// Values by environment-variable name, read through the configuration reader.
    struct Variables {
        let reader: ConfigReader

        subscript(name: String) -> String? {
            reader.string(
                forKey: ConfigKey(name.lowercased().split(separator: "_").map(String.init)),
                isSecret: KaizenConfiguration.secretVariables.contains(name))
        }
    }

    static func s3Configuration(_ env: Variables) throws -> S3Configuration? {
        func value(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
        switch value("KAIZEN_BLOB_STORE")?.lowercased() ?? "filesystem" {
        case "filesystem": return nil
        case "s3": break
        case let other: throw StorageError.configuration("KAIZEN_BLOB_STORE must be 'filesystem' or 's3', got '\(other)'")
        }
        let region = value("KAIZEN_S3_REGION") ?? value("AWS_REGION") ?? "us-east-1"
        guard let bucket = value("KAIZEN_S3_BUCKET") else {
            throw StorageError.configuration("KAIZEN_BLOB_STORE=s3 needs KAIZEN_S3_BUCKET")
        }
        guard let key = value("KAIZEN_S3_ACCESS_KEY_ID") ?? value("AWS_ACCESS_KEY_ID"),
            let secret = value("KAIZEN_S3_SECRET_ACCESS_KEY") ?? value("AWS_SECRET_ACCESS_KEY")
        else {
            throw StorageError.configuration(
                "KAIZEN_BLOB_STORE=s3 needs KAIZEN_S3_ACCESS_KEY_ID and KAIZEN_S3_SECRET_ACCESS_KEY (or the AWS_* ones)")
        }
        let endpoint = value("KAIZEN_S3_ENDPOINT")
        let pathStyle: Bool
        switch value("KAIZEN_S3_PATH_STYLE")?.lowercased() {
        case nil: pathStyle = endpoint != nil  // self-hosted stores rarely have wildcard DNS for buckets
        case "true", "1", "yes": pathStyle = true
        case "false", "0", "no": pathStyle = false
        case let other?: throw StorageError.configuration("KAIZEN_S3_PATH_STYLE must be true or false, got '\(other)'")
        }
        return S3Configuration(
            endpoint: endpoint ?? "https://s3.\(region).amazonaws.com", bucket: bucket, region: region,
            credentials: .init(
                accessKeyID: key, secretAccessKey: secret,
                sessionToken: value("KAIZEN_S3_SESSION_TOKEN") ?? value("AWS_SESSION_TOKEN")),
            prefix: value("KAIZEN_S3_PREFIX") ?? "blobs/", pathStyle: pathStyle)
    }

    public var embeddedPostgresDirectory: String {
        URL(fileURLWithPath: dataDirectory).standardizedFileURL.appendingPathComponent("postgres").path
    }

    public var blobDirectory: String {
        URL(fileURLWithPath: dataDirectory).standardizedFileURL.appendingPathComponent("blobs").path
    }

    public var firstTokenPath: String {
        URL(fileURLWithPath: dataDirectory).standardizedFileURL.appendingPathComponent("first-token.txt").path
    }

    public var ownerLinkPath: String {
        URL(fileURLWithPath: dataDirectory).standardizedFileURL.appendingPathComponent("first-owner-link.txt").path
    }
}

public enum KaizenVersion {
    public static let current = "0.1.0"
}
