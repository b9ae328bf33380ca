import Domains
import Foundation
import Storage

/// Everything an operator can set, read from `KAIZEN_*` environment variables (see README).
public struct KaizenConfiguration: Sendable {
    public var dataDirectory: String = "./.kaizen"
    public var host: String = "127.0.0.1"
    /// Plaintext port serving HTTP/1.1 and h2c. 0 picks a free port (tests).
    public var port: Int = 8080
    /// Nil: the embedded PostgreSQL under the data directory.
    public var databaseURLs: [DatabaseURL]?
    public var logicalShards: Int = 16
    public var maxConnectionsPerServer: Int = 40
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    public var tlsPort: Int = 8443
    public var userRateLimit = RateLimit(perMinute: 600)
    public var workspaceRateLimit = RateLimit(perMinute: 6000)
    public var maxBodyBytes: Int = 64 * 1024 * 1024
    public var finalizeQuota = RateLimit(perMinute: 60)
    public var maxAttachmentBytes: Int64 = 1 << 30
    public var actorIdleSeconds: Double = 300
    public var authCacheSeconds: Double = 5
    public var publicURL: String?
    public var logLevel: String = "info"

    public init() {}

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
        -> KaizenConfiguration
    {
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
            guard let value = Double(raw), value >= 0 else {
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
        if let v = try int("KAIZEN_MAX_ATTACHMENT_BYTES") { config.maxAttachmentBytes = Int64(v) }
        if let v = try double("KAIZEN_ACTOR_IDLE_SECONDS") { config.actorIdleSeconds = v }
        if let v = try double("KAIZEN_AUTH_CACHE_SECONDS") { config.authCacheSeconds = v }
        if let v = env["KAIZEN_PUBLIC_URL"], !v.isEmpty { config.publicURL = v }
        if let v = env["KAIZEN_LOG_LEVEL"], !v.isEmpty { config.logLevel = v }
        return config
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
}

public enum KaizenVersion {
    public static let current = "0.1.0"
}
