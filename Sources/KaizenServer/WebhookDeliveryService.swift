import AsyncHTTPClient
import Domains
import Gateway
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Storage
import Synchronization
import Tenancy

#if canImport(Glibc)
import Glibc
#endif

/// Sends the webhook outbox of every physical server: claims due deliveries (each the oldest pending one of
/// its webhook, so a receiver sees events in order), signs and posts them, and records what came of it.
/// At least once: a node that dies mid-send leaves the lease to lapse and another sender (or itself,
/// restarted) sends it again with the same `Kaizen-Delivery` id.
///
/// Bounded: at most `maxInFlight` sends per server at once and `perHost` to any one host, each within
/// `timeout`, so one slow receiver holds up neither the others nor the outbox. Destinations are checked on
/// their resolved addresses at send time (the `NetworkPolicy`); redirects are never followed.
struct WebhookDeliveryService: Service {
    let outboxes: [WebhookOutbox]
    let publicURL: PublicURL
    let policy: NetworkPolicy
    var timeout: Duration = .seconds(10)
    /// The first retry's delay; later ones double it.
    var firstRetrySeconds: Double = 10
    let logger: Logger
    var maxInFlight = 16
    var perHost = 4
    /// Polling slows from `idleDelay` to `maxIdleDelay` while there is nothing to send (a first event after a
    /// quiet spell waits at most that long); it speeds up again as soon as something was claimed.
    var idleDelay: Duration = .milliseconds(250)
    var maxIdleDelay: Duration = .seconds(2)

    /// `timeout` as NIO's type (sub-second parts kept).
    var timeoutAmount: TimeAmount {
        .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5), read: timeoutAmount)
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let slots = HostSlots(limit: perHost)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for outbox in outboxes {
                    group.addTask { await work(outbox, client: client, slots: slots) }
                }
            }
        }
        try? await client.shutdown()
    }

    func work(_ outbox: WebhookOutbox, client: HTTPClient, slots: HostSlots) async {
        let inFlight = InFlight()
        // A lease outlives a send (its timeout, and a wait for the host's slot).
        let lease = timeout * 3 + .seconds(30)
        await withDiscardingTaskGroup { group in
            var delay = idleDelay
            while !Task.isCancelled {
                let room = maxInFlight - inFlight.count.load(ordering: .relaxed)
                var claimed: [WebhookOutbox.Due] = []
                if room > 0 {
                    do {
                        claimed = try await outbox.claim(limit: room, lease: lease)
                    } catch {
                        logger.debug("webhook outbox unavailable: \(error)")
                    }
                }
                for due in claimed {
                    inFlight.count.add(1, ordering: .relaxed)
                    group.addTask {
                        await deliver(due, outbox: outbox, client: client, slots: slots)
                        inFlight.count.subtract(1, ordering: .relaxed)
                    }
                }
                if claimed.isEmpty {
                    do { try await Task.sleep(for: delay) } catch { return }
                    delay = min(delay * 2, maxIdleDelay)
                } else {
                    delay = idleDelay
                }
            }
        }
    }

    func deliver(_ due: WebhookOutbox.Due, outbox: WebhookOutbox, client: HTTPClient, slots: HostSlots) async {
        let outcome = await send(due, client: client, slots: slots)
        do {
            try await outbox.record(due, outcome)
        } catch {
            // The lease lapses and the delivery is sent again: at least once.
            logger.warning("could not record a webhook delivery", metadata: ["delivery": "\(due.deliveryID)", "error": "\(error)"])
        }
    }

    func send(_ due: WebhookOutbox.Due, client: HTTPClient, slots: HostSlots) async -> WebhookOutbox.Outcome {
        guard let url = URL(string: due.url), let host = url.host, !host.isEmpty else {
            return .failed(status: nil, latencyMs: nil, response: nil, error: "the URL cannot be parsed", disable: nil)
        }
        // The destination's addresses now, not when it was registered: DNS may have changed since.
        let addresses: [[UInt8]]
        let literal = IPAddress.parse(host)
        if let literal {
            addresses = [literal]
        } else {
            addresses = await Resolver.addresses(of: host)
            if addresses.isEmpty {
                return retryOrGiveUp(due, status: nil, latency: nil, response: nil, error: "\(host) does not resolve")
            }
        }
        for address in addresses {
            if let refusal = policy.refusal(address) {
                // Refused here: nothing is sent. Not retried — only the operator or the webhook's URL can change this.
                let why = literal == nil ? "\(host) resolves to \(refusal)" : refusal
                return .failed(status: nil, latencyMs: nil, response: nil, error: "refused: \(why)", disable: nil)
            }
        }
        let payload = (try? JSONSerialization.jsonObject(with: Data(due.payload.utf8))) as? [String: Any] ?? [:]
        let body = WebhookBody.render(
            format: due.format, eventID: due.eventID, kind: due.kind, createdAt: due.eventCreatedAt, workspaceID: due.workspaceID,
            projectID: due.projectID, projectSlug: due.projectSlug, payload: payload, publicURL: publicURL.value)
        var request = HTTPClientRequest(url: due.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Kaizen-Webhooks/1")
        request.headers.add(name: "Kaizen-Event", value: due.kind)
        request.headers.add(name: "Kaizen-Delivery", value: due.deliveryID)
        request.headers.add(
            name: "Kaizen-Signature",
            value: WebhookSignature.header(secrets: due.secrets, timestamp: Int64(Date().timeIntervalSince1970), body: body))
        request.body = .bytes(ByteBuffer(bytes: body))

        await slots.acquire(host)
        let started = ContinuousClock.now
        defer { Task { await slots.release(host) } }
        do {
            let response = try await client.execute(request, timeout: timeoutAmount)
            let collected = try await response.body.collect(upTo: 64 * 1024)
            let latency = Self.milliseconds(ContinuousClock.now - started)
            let text = String(decoding: collected.readableBytesView.prefix(1024), as: UTF8.self)
            let status = Int(response.status.code)
            switch status {
            case 200..<300: return .delivered(status: status, latencyMs: latency, response: text)
            case 410:
                return .failed(status: status, latencyMs: latency, response: text, error: nil, disable: "the receiver answered 410 Gone")
            case _ where WebhookRetry.retryable(status: status):
                return retryOrGiveUp(due, status: status, latency: latency, response: text, error: nil)
            default:
                return .failed(status: status, latencyMs: latency, response: text, error: "the receiver refused it (\(status))", disable: nil)
            }
        } catch {
            let latency = Self.milliseconds(ContinuousClock.now - started)
            return retryOrGiveUp(due, status: nil, latency: latency, response: nil, error: Self.describe(error))
        }
    }

    /// Tried again with backoff while the delivery is younger than a day; after that the webhook is disabled.
    func retryOrGiveUp(_ due: WebhookOutbox.Due, status: Int?, latency: Int?, response: String?, error: String?) -> WebhookOutbox.Outcome {
        let delay = WebhookRetry.delaySeconds(afterAttempt: due.attempts, jitter: Double.random(in: 0...1), first: firstRetrySeconds)
        let retryAt = Date().addingTimeInterval(delay)
        if retryAt.timeIntervalSince(due.createdAt) > WebhookRetry.giveUpAfterSeconds {
            return .failed(
                status: status, latencyMs: latency, response: response, error: error,
                disable: "deliveries failed for 24 hours (last: \(status.map { "HTTP \($0)" } ?? error ?? "no answer"))")
        }
        return .retry(status: status, latencyMs: latency, response: response, error: error, retryAt: retryAt)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    static func describe(_ error: any Error) -> String {
        if let client = error as? HTTPClientError {
            if client == .deadlineExceeded || client == .readTimeout { return "timed out" }
            if client == .connectTimeout { return "connect timed out" }
            if client == .remoteConnectionClosed { return "the receiver closed the connection" }
        }
        if error is NIOConnectionError || error is IOError { return "could not connect: \(error)" }
        return String(describing: error).prefix(300).description
    }
}

/// Sends under way (shared by the claim loop and the send tasks).
final class InFlight: Sendable {
    let count = Atomic<Int>(0)
}

/// At most `limit` sends to one host at once; the others wait their turn (FIFO).
actor HostSlots {
    let limit: Int
    var busy: [String: Int] = [:]
    var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    init(limit: Int) { self.limit = limit }

    func acquire(_ host: String) async {
        if busy[host, default: 0] < limit {
            busy[host, default: 0] += 1
            return
        }
        await withCheckedContinuation { waiting[host, default: []].append($0) }
    }

    func release(_ host: String) {
        if var queue = waiting[host], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[host] = queue.isEmpty ? nil : queue
            next.resume()  // the slot passes to the next sender
            return
        }
        busy[host, default: 1] -= 1
        if busy[host] == 0 { busy[host] = nil }
    }
}

/// Name resolution off the cooperative pool (getaddrinfo blocks), on NIO's thread pool.
enum Resolver {
    static func addresses(of host: String) async -> [[UInt8]] {
        (try? await NIOThreadPool.singleton.runIfActive { lookup(host) }) ?? []
    }

    static func lookup(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [[UInt8]] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let address = info.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var raw = v4.pointee.sin_addr
                        out.append(withUnsafeBytes(of: &raw) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var raw = v6.pointee.sin6_addr
                        out.append(withUnsafeBytes(of: &raw) { Array($0) })
                    }
                default: break
                }
            }
            cursor = info.pointee.ai_next
        }
        return out
    }
}
