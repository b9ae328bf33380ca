import Domains
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import Tenancy

/// Keeps this node's live streams fed:
/// - per database server, it polls for committed events without a position every `poll` (one probe of a
///   partial index), numbers them (`EventLog.number`) and turns them into people's notifications
///   (`Notifier`) — any node may do either, they take turns in the database;
/// - it LISTENs on every server, so an event committed through another node wakes the streams held here,
///   and on the catalog for inboxes;
/// - it relays this node's ingest progress to the others (batched, one NOTIFY per 50 ms at most) and
///   delivers theirs here;
/// - it sends the keep-alives, and on shutdown ends every stream so the server need not wait for them.
struct LiveEventService: Service {
    let logs: [EventLog]
    let notifiers: [Notifier]
    let catalog: CatalogStore
    let hub: LiveEventHub
    let relay: ProgressRelay
    var heartbeat: Duration = .seconds(15)
    /// How often each server is asked for unnumbered events: the most a stream waits for a committed event.
    var poll: Duration = .milliseconds(200)
    /// Notifications are also looked for this often (a node that numbered events wakes its own notifier at once;
    /// this catches what another node numbered while its notifier was busy or gone).
    var notifierSweep: Duration = .seconds(5)
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await cancelWhenGracefulShutdown {
                await withDiscardingTaskGroup { group in
                    for (log, notifier) in zip(logs, notifiers) {
                        let numbering = Trigger()
                        let notifying = Trigger()
                        group.addTask {
                            await log.follow { notice in
                                switch notice {
                                case .numbered(let workspaces):
                                    hub.logAdvanced(workspaceIDs: workspaces)
                                    notifying.pull()
                                case .progress(let payload): deliverRelayed(payload)
                                case .reconnected:
                                    hub.logAdvanced(workspaceIDs: nil)
                                    numbering.pull()
                                    notifying.pull()
                                }
                            }
                        }
                        group.addTask { await numberEvents(log, trigger: numbering, then: notifying) }
                        group.addTask { await notify(notifier, trigger: notifying) }
                        group.addTask { await tick(every: poll) { numbering.pull() } }
                        group.addTask { await tick(every: notifierSweep) { notifying.pull() } }
                    }
                    group.addTask {
                        await catalog.followInboxes { users in hub.inboxesChanged(userIDs: users) }
                    }
                    group.addTask { await tick(every: heartbeat) { hub.heartbeat() } }
                    group.addTask { await relay.run(log: logs[0], nodeID: hub.nodeID, logger: logger) }
                }
            }
        } onGracefulShutdown: {
            hub.close()
        }
    }

    func numberEvents(_ log: EventLog, trigger: Trigger, then notifying: Trigger) async {
        for await _ in trigger.pulls {
            // Almost always nothing: one index probe, no transaction, no lock.
            guard (try? await log.hasUnnumbered()) == true else { continue }
            var more = true
            while more && !Task.isCancelled {
                do {
                    let result = try await log.number()
                    more = result.more
                    if !result.workspaces.isEmpty { notifying.pull() }
                } catch {
                    logger.debug("numbering events on server \(log.server.index) failed: \(error)")
                    more = false
                }
            }
        }
    }

    func notify(_ notifier: Notifier, trigger: Trigger) async {
        for await _ in trigger.pulls {
            var more = true
            while more && !Task.isCancelled {
                do {
                    more = try await notifier.run().more
                } catch {
                    logger.debug("notifier failed: \(error)")
                    more = false
                }
            }
        }
    }

    func tick(every period: Duration, _ body: @Sendable () -> Void) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            body()
        }
    }

    func deliverRelayed(_ payload: String) {
        guard let batch = try? JSONDecoder().decode(ProgressRelay.Batch.self, from: Data(payload.utf8)), batch.node != hub.nodeID else {
            return
        }
        for progress in batch.items { hub.publish(progress, fromOtherNode: true) }
    }
}

/// A wake-up that coalesces: pulls while work runs make it run once more, never more.
final class Trigger: Sendable {
    let pulls: AsyncStream<Void>
    let continuation: AsyncStream<Void>.Continuation

    init() {
        (pulls, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func pull() { continuation.yield() }
}

/// Carries this node's ingest progress to the other nodes: progress is collected for up to `window` and sent
/// as NOTIFYs of at most 10 (every node listens on every server, so one server reaches them all). Progress is
/// a courtesy, the log is the record: past 1,000 waiting per stripe, the newest is dropped rather than queued
/// without bound while the database is slow.
///
/// A finalize only appends to one of 16 stripes (by workspace) and flips an atomic flag; no lock is shared
/// by all requests.
final class ProgressRelay: Sendable {
    struct Batch: Codable {
        let node: String
        let items: [IngestProgress]
    }

    final class Stripe: Sendable {
        let items = Mutex<[IngestProgress]>([])
    }

    let stripes: [Stripe] = (0..<16).map { _ in Stripe() }
    let scheduled = Atomic<Bool>(false)
    let trigger = Trigger()
    let window: Duration

    init(window: Duration = .milliseconds(50)) {
        self.window = window
    }

    func send(_ progress: IngestProgress) {
        stripes.stripe(for: progress.workspaceID).items.withLock { if $0.count < 1_000 { $0.append(progress) } }
        if !scheduled.exchange(true, ordering: .acquiringAndReleasing) { trigger.pull() }
    }

    func run(log: EventLog, nodeID: String, logger: Logger) async {
        for await _ in trigger.pulls {
            try? await Task.sleep(for: window)
            scheduled.store(false, ordering: .releasing)
            let items = stripes.flatMap { stripe in stripe.items.withLock { items in defer { items = [] }; return items } }
            for start in stride(from: 0, to: items.count, by: 10) {
                let batch = Batch(node: nodeID, items: Array(items[start..<min(start + 10, items.count)]))
                guard let data = try? JSONEncoder().encode(batch), data.count < 7_500 else { continue }
                do {
                    try await log.relay(String(decoding: data, as: UTF8.self))
                } catch {
                    logger.debug("progress relay failed: \(error)")
                }
            }
        }
    }
}
