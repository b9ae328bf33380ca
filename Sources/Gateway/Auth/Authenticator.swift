import Domains
import Foundation
import Tenancy
import Synchronization

/// Turns bearer secrets into identities, with a small striped cache in front of the catalog.
///
/// A cached identity is reused for at most `ttlNanos` and is dropped at once when any node revokes
/// the token or changes the user's memberships (this node directly, the others through the catalog's
/// `IdentityChangeFeed`), so a revoke is seen by the next request everywhere.
public final class Authenticator: Sendable {
    struct Entry {
        /// Nil: the catalog knows no live token with this hash (cached too, so a flood of made-up
        /// tokens costs one catalog query per distinct token and TTL, not one per request).
        let identity: Identity?
        let fetchedNanos: UInt64
    }

    final class Stripe: Sendable {
        let entries = Mutex<[String: Entry]>([:])
        /// Token id → when it last authenticated (epoch ms), since the last `drainUses`.
        let uses = Mutex<[String: UInt64]>([:])
    }

    let directory: Directory
    let ttlNanos: UInt64
    let maxEntriesPerStripe = 4096
    let stripes: [Stripe] = (0..<32).map { _ in Stripe() }

    /// Epoch milliseconds, for the expiry of cached identities; injected by tests.
    let wallClock: @Sendable () -> UInt64

    public init(
        directory: Directory, cacheSeconds: Double, wallClock: @escaping @Sendable () -> UInt64 = { Clock.nowMilliseconds() }
    ) {
        self.directory = directory
        self.ttlNanos = UInt64(max(0, cacheSeconds) * 1e9)
        self.wallClock = wallClock
    }

    private func stripe(_ hash: String) -> Stripe { stripes.stripe(for: hash) }

    /// The identity for `secret`, or 401.
    public func authenticate(secret: Substring) async throws -> Identity {
        guard TokenSecret.looksValid(secret) else {
            throw DomainError.unauthorized("the bearer token is not a Kaizen token (expected krt_…)")
        }
        let hash = TokenSecret.hash(secret)
        let now = Clock.monotonicNanoseconds()
        let nowWall = wallClock()
        let stripe = self.stripe(hash)
        if let cached = stripe.entries.withLock({ $0[hash] }), now &- cached.fetchedNanos < ttlNanos {
            guard let identity = cached.identity else {
                throw DomainError.unauthorized("the token is unknown, revoked or expired")
            }
            if let expires = identity.expiresAtMilliseconds, expires <= nowWall {
                stripe.entries.withLock { _ = $0.removeValue(forKey: hash) }
                throw DomainError.unauthorized("the token has expired")
            }
            stripe.uses.withLock { $0[identity.tokenID] = nowWall }
            return identity
        }
        let identity = try await directory.resolve(secretHash: hash)
        if ttlNanos > 0 {
            stripe.entries.withLock { entries in
                if entries.count >= maxEntriesPerStripe { entries.removeAll(keepingCapacity: true) }
                entries[hash] = Entry(identity: identity, fetchedNanos: now)
            }
        }
        guard let identity else { throw DomainError.unauthorized("the token is unknown, revoked or expired") }
        stripe.uses.withLock { $0[identity.tokenID] = nowWall }
        return identity
    }

    /// The tokens that authenticated since the last call, each with its latest use, and forgets them:
    /// `lastUsedAt` is written from this every flush period, not once per request.
    public func drainUses() -> [(tokenID: String, at: Date)] {
        var out: [(tokenID: String, at: Date)] = []
        for stripe in stripes {
            let taken = stripe.uses.withLock { uses in
                defer { uses.removeAll(keepingCapacity: true) }
                return uses
            }
            for (id, ms) in taken { out.append((id, Date(timeIntervalSince1970: Double(ms) / 1000))) }
        }
        return out
    }

    /// Forgets cached identities matching `predicate` (a revoked token, a user whose memberships changed).
    public func invalidate(where predicate: (Identity) -> Bool) {
        for stripe in stripes {
            stripe.entries.withLock { entries in
                for (key, entry) in entries where entry.identity.map(predicate) ?? false { entries[key] = nil }
            }
        }
    }

    /// Applies a change reported by the identity feed.
    public func invalidate(_ change: IdentityChange) {
        switch change {
        case .token(let id): invalidate { $0.tokenID == id }
        case .user(let id): invalidate { $0.userID == id }
        case .all: for stripe in stripes { stripe.entries.withLock { $0.removeAll() } }
        }
    }
}
