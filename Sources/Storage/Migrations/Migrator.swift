import Logging
import PostgresNIO

/// Applies versioned migrations to one server. Each migration runs in its own transaction under an
/// advisory lock, so concurrent starts (several Kaizen nodes, parallel tests) apply each exactly once.
public struct Migrator: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public static func migrations(for scope: MigrationScope) -> [Migration] {
        switch scope {
        case .catalog: CatalogSchema.migrations
        case .shard: ShardSchema.migrations
        }
    }

    /// Returns the versions applied by this call (empty when already up to date).
    @discardableResult
    public func migrate(_ server: PhysicalServer, scope: MigrationScope) async throws -> [Int] {
        let logger = self.logger
        try await server.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(72431)", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS kaizen_schema_migrations (
                    scope      text NOT NULL,
                    version    integer NOT NULL,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (scope, version)
                )
                """, logger: logger)
        }
        var applied: [Int] = []
        for migration in Self.migrations(for: scope) {
            let didApply = try await server.transaction { connection -> Bool in
                try await connection.query("SELECT pg_advisory_xact_lock(72431)", logger: logger)
                let rows = try await connection.query(
                    "SELECT 1 FROM kaizen_schema_migrations WHERE scope = \(scope.rawValue) AND version = \(migration.version)",
                    logger: logger)
                for try await _ in rows { return false }
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO kaizen_schema_migrations (scope, version, name) VALUES (\(scope.rawValue), \(migration.version), \(migration.name))",
                    logger: logger)
                return true
            }
            if didApply {
                applied.append(migration.version)
                logger.info(
                    "applied migration",
                    metadata: ["server": "\(server.index)", "scope": "\(scope.rawValue)", "version": "\(migration.version)"])
            }
        }
        return applied
    }
}
