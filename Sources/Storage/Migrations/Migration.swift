/// A versioned schema change. Statements run in order inside one transaction.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]

    public init(_ version: Int, _ name: String, _ statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Which database a migration list applies to.
public enum MigrationScope: String, Sendable {
    /// Workspaces, users, tokens, the shard map: on the first server only.
    case catalog
    /// Tenant data: on every physical server. Every tenant table leads its primary key with `workspace_id`,
    /// so the same schema fits a Citus-style distributed PostgreSQL later.
    case shard
}
