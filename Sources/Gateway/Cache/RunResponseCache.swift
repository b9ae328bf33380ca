import Domains
import NIOCore
import Synchronization

/// Encoded answers of `GET /v1/runs/:id`, by run id, on this node.
///
/// A closed run never changes (an open sharded run is not cached), and neither does its project's access mode (there is no API to
/// change it), so an entry never goes stale: only who may read it is decided per request, by the
/// caller's grants. Striped like the rate limiter, bounded per stripe (oldest out first).
public final class RunResponseCache: Sendable {
    public struct Entry: Sendable {
        let workspaceID: String
        let accessMode: AccessMode
        let contentType: String
        let body: ByteBuffer
    }

    struct Contents {
        var entries: [String: Entry] = [:]
        var order: [String] = []
    }

    final class Stripe: Sendable {
        let contents = Mutex(Contents())
    }

    private let stripes: [Stripe]
    private let perStripe: Int
    /// Larger answers are not kept.
    static let maxBodyBytes = 64 * 1024

    public init(capacity: Int = 4096, stripeCount: Int = 16) {
        self.stripes = (0..<stripeCount).map { _ in Stripe() }
        self.perStripe = max(1, capacity / stripeCount)
    }

    private func stripe(_ key: String) -> Stripe {
        stripes[Int(UInt(bitPattern: key.hashValue) % UInt(stripes.count))]
    }

    func get(_ runID: String) -> Entry? {
        stripe(runID).contents.withLock { $0.entries[runID] }
    }

    func put(_ runID: String, _ entry: Entry) {
        guard entry.body.readableBytes <= Self.maxBodyBytes else { return }
        let limit = perStripe
        stripe(runID).contents.withLock { stripe in
            if stripe.entries.updateValue(entry, forKey: runID) == nil {
                stripe.order.append(runID)
                if stripe.order.count > limit { stripe.entries[stripe.order.removeFirst()] = nil }
            }
        }
    }

    public var count: Int { stripes.reduce(0) { total, stripe in total + stripe.contents.withLock { $0.entries.count } } }
}

/// What the run handler tells the cache about the answer it produced: whose run it is.
final class RunReadFill: Sendable {
    @TaskLocal static var current: RunReadFill?

    private let owner = Mutex<(workspaceID: String, accessMode: AccessMode)?>(nil)

    func set(workspaceID: String, accessMode: AccessMode) { owner.withLock { $0 = (workspaceID, accessMode) } }
    var value: (workspaceID: String, accessMode: AccessMode)? { owner.withLock { $0 } }
}
