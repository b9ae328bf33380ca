import Logging
import PostgresNIO
import Synchronization

extension PhysicalServer {
    /// LISTENs on `channels` over one pooled connection until cancelled, calling `handle(channel, payload)` for
    /// each notification. Whenever listening (re)starts on all of them, `onListening` is called first: what was
    /// sent while nobody listened is unknown, so the caller treats it as "anything may have changed". A dropped
    /// connection is retried after a second.
    public func follow(
        channels: [String], logger: Logger, onListening: @escaping @Sendable () -> Void,
        handle: @escaping @Sendable (String, String) -> Void
    ) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        let remaining = Countdown(channels.count)
                        for channel in channels {
                            group.addTask {
                                try await connection.listen(on: channel) { notices in
                                    if remaining.tick() { onListening() }
                                    for try await notice in notices { handle(channel, notice.payload) }
                                }
                            }
                        }
                        // One channel's listener ending (the connection dropped) ends them all.
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listener on server \(index) (\(channels.joined(separator: ", "))) dropped; reconnecting: \(error)")
            }
            onListening()
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
        }
    }
}

/// Counts down to zero once, from any task.
final class Countdown: Sendable {
    let remaining: Mutex<Int>

    init(_ count: Int) { remaining = Mutex(count) }

    /// True for the call that reaches zero.
    func tick() -> Bool {
        remaining.withLock { count in
            count -= 1
            return count == 0
        }
    }
}
