/// Failures of start-up and operator commands: bad configuration, a database that cannot be provisioned.
/// What a request can meet (a server down, a duplicate row) is a `DomainError`.
public enum StorageError: Error, Sendable, CustomStringConvertible {
    /// Bad operator configuration (URLs, shard map, the blob store): fails start-up with this sentence.
    case configuration(String)
    /// Embedded PostgreSQL could not be provisioned or started.
    case embedded(String)

    public var description: String {
        switch self {
        case .configuration(let message): return message
        case .embedded(let message): return message
        }
    }
}
