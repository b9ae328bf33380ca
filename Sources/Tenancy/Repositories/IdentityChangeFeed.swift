import Domains

/// A change that makes cached identities stale: a token revoked, a person's memberships changed.
public enum IdentityChange: Sendable, Equatable {
    case token(id: String)
    case user(id: String)
    /// Changes may have been missed (the feed reconnected): forget every cached identity.
    case all
}

/// Identity changes made by any node, delivered to every node as they commit, so a revoked token is refused
/// everywhere at once rather than when a cache entry expires.
public protocol IdentityChangeFeed: Sendable {
    /// Calls `handle` for every change until the task is cancelled; reconnects (with `.all`) when the feed drops.
    func follow(_ handle: @escaping @Sendable (IdentityChange) -> Void) async
}
