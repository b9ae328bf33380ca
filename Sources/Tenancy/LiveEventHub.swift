import Domains
import Synchronization

/// Wakes the live streams open on this node: a workspace's event streams when its log grew (on any node),
/// a person's notification streams when their inbox did, and carries ingest progress, which is never
/// stored, to the streams that watch it.
///
/// It holds no events: a woken stream reads the log (or the inbox) after its own position, so a missed or
/// doubled wake-up costs a read, never an event. Subscribers sit in 64 independently locked stripes, held
/// only for a dictionary update, so publishing from a finalize never waits on another workspace.
public final class LiveEventHub: Sendable {
    public enum Signal: Sendable {
        /// The log (or the inbox) has something after some position: read it.
        case wake
        case progress(IngestProgress)
        /// Nothing happened for a while: a stream writes a comment so proxies keep it open.
        case heartbeat
    }

    public struct Subscription: Sendable {
        /// Ends when the hub closes; dropping it unsubscribes.
        public let signals: AsyncStream<Signal>
    }

    final class Stripe: Sendable {
        let subscribers = Mutex<[String: [UInt64: AsyncStream<Signal>.Continuation]]>([:])
    }

    let stripes: [Stripe]
    let nextID = Atomic<UInt64>(0)
    let closed = Atomic<Bool>(false)
    /// Sends a progress to the other nodes (the server sets it; nil in a single-process test).
    let relay: (@Sendable (IngestProgress) -> Void)?
    /// This process, so that a relayed progress coming back is not delivered twice.
    public let nodeID: String

    public init(nodeID: String = ResourceID.make(.node), relay: (@Sendable (IngestProgress) -> Void)? = nil, stripeCount: Int = 64) {
        self.nodeID = nodeID
        self.relay = relay
        self.stripes = (0..<max(1, stripeCount)).map { _ in Stripe() }
    }

    private func stripe(for key: String) -> Stripe { stripes.stripe(for: key) }

    static func workspaceKey(_ id: String) -> String { "w:" + id }
    static func userKey(_ id: String) -> String { "u:" + id }

    /// The wake-ups and progress of one workspace. The stream starts with one `.wake`, so a reader that
    /// subscribes, then reads, cannot miss what committed between the two. Ends when the hub closes.
    public func subscribe(workspaceID: String) -> Subscription { subscribe(Self.workspaceKey(workspaceID)) }

    /// The wake-ups of one person's inbox.
    public func subscribe(userID: String) -> Subscription { subscribe(Self.userKey(userID)) }

    private func subscribe(_ key: String) -> Subscription {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        // Progress is dropped oldest-first for a reader that does not keep up; wake-ups are idempotent.
        let (stream, continuation) = AsyncStream<Signal>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let stripe = stripe(for: key)
        continuation.onTermination = { [weak stripe] _ in
            stripe?.subscribers.withLock { all in
                all[key]?[id] = nil
                if all[key]?.isEmpty == true { all[key] = nil }
            }
        }
        continuation.yield(.wake)
        if closed.load(ordering: .acquiring) {
            continuation.finish()
        } else {
            stripe.subscribers.withLock { $0[key, default: [:]][id] = continuation }
            // Closed meanwhile: `close` may have passed this stripe already.
            if closed.load(ordering: .acquiring) { continuation.finish() }
        }
        return Subscription(signals: stream)
    }

    /// The logs of these workspaces grew (nil: any workspace — a listener that reconnected cannot know).
    public func logAdvanced(workspaceIDs: Set<String>?) {
        deliver(keys: workspaceIDs.map { Set($0.map(Self.workspaceKey)) }, prefix: "w:", .wake)
    }

    /// These people's inboxes grew (nil: anyone's).
    public func inboxesChanged(userIDs: Set<String>?) {
        deliver(keys: userIDs.map { Set($0.map(Self.userKey)) }, prefix: "u:", .wake)
    }

    /// A push's progress: to this node's streams of the workspace, and (unless it came from another node)
    /// to the other nodes'.
    public func publish(_ progress: IngestProgress, fromOtherNode: Bool = false) {
        deliver(keys: [Self.workspaceKey(progress.workspaceID)], prefix: "w:", .progress(progress))
        if !fromOtherNode { relay?(progress) }
    }

    /// Tells every stream on this node to send a keep-alive.
    public func heartbeat() {
        deliver(keys: nil, prefix: "", .heartbeat)
    }

    /// How many streams are open on this node (for tests and metrics).
    public var subscriberCount: Int {
        stripes.reduce(0) { total, stripe in total + stripe.subscribers.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    }

    private func deliver(keys: Set<String>?, prefix: String, _ signal: Signal) {
        if let keys {
            for key in keys {
                let targets = stripe(for: key).subscribers.withLock { $0[key].map { Array($0.values) } ?? [] }
                for target in targets { target.yield(signal) }
            }
        } else {
            for stripe in stripes {
                let targets = stripe.subscribers.withLock { all in all.filter { $0.key.hasPrefix(prefix) }.flatMap { $0.value.values } }
                for target in targets { target.yield(signal) }
            }
        }
    }

    /// Ends every stream (a graceful shutdown must not wait for streams that never end) and refuses new ones.
    public func close() {
        closed.store(true, ordering: .releasing)
        for stripe in stripes {
            let all = stripe.subscribers.withLock { all in
                defer { all = [:] }
                return all.values.flatMap { $0.values }
            }
            for continuation in all { continuation.finish() }
        }
    }
}
