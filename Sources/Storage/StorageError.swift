/// Failures of the storage layer that callers handle by kind.
public enum StorageError: Error, Sendable, CustomStringConvertible {
    /// Bad operator configuration (URLs, shard map): fails start-up with this sentence.
    case configuration(String)
    /// A physical server does not answer; `server` is its index in `KAIZEN_DATABASE_URLS`.
    case serverUnavailable(server: Int, address: String, underlying: String)
    /// A unique constraint refused the row (duplicate slug, …).
    case uniqueViolation(constraint: String)
    /// Embedded PostgreSQL could not be provisioned or started.
    case embedded(String)
    /// The attachment store (an S3-compatible service) failed or does not answer.
    case blobStore(String)

    public var description: String {
        switch self {
        case .configuration(let message): return message
        case .serverUnavailable(let server, let address, let underlying):
            return "database server \(server) (\(address)) is unavailable: \(underlying)"
        case .uniqueViolation(let constraint): return "unique constraint \(constraint) violated"
        case .embedded(let message): return message
        case .blobStore(let message): return message
        }
    }
}
