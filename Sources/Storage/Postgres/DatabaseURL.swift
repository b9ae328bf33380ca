import Foundation

/// A `postgres://user:password@host:port/database` address, as given in `KAIZEN_DATABASE_URLS`.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// `sslmode=require` asks for TLS; anything else connects in plaintext (loopback and private networks).
    public var requireTLS: Bool

    public init(host: String, port: Int, username: String, password: String? = nil, database: String, requireTLS: Bool = false) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.requireTLS = requireTLS
    }

    public init(parsing string: String) throws {
        guard let components = URLComponents(string: string.trimmingCharacters(in: .whitespaces)),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw StorageError.configuration("not a postgres:// URL: \(Self.redact(string))")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !database.isEmpty else {
            throw StorageError.configuration("database URL names no database: \(Self.redact(string))")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user ?? "postgres"
        self.password = components.password
        self.database = database
        self.requireTLS = components.queryItems?.first { $0.name == "sslmode" }?.value == "require"
    }

    /// Comma-separated list; the first server also holds the catalog.
    public static func parseList(_ string: String) throws -> [DatabaseURL] {
        try string.split(separator: ",").map { try DatabaseURL(parsing: String($0)) }
    }

    /// The URL with its password, for handing to another process (`KAIZEN_DATABASE_URLS`); never log it.
    public var urlWithCredentials: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = username
        components.password = password
        components.host = host
        components.port = port
        components.path = "/" + database
        if requireTLS { components.queryItems = [URLQueryItem(name: "sslmode", value: "require")] }
        return components.string ?? description
    }

    /// Safe to log: never the password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    static func redact(_ string: String) -> String {
        guard var components = URLComponents(string: string) else { return "<unparseable>" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "<unparseable>"
    }
}
