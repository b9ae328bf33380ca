/// A FIFO, non-reentrant critical section for async code, used inside an actor.
///
/// Actors are reentrant at every `await`: while one write waits on the database another
/// could start. Writes that must be sequenced (sequence numbers, idempotency checks, later
/// the ordering of finalizes) run inside the lane, one at a time, in arrival order; reads
/// of the actor's cache don't enter it and stay concurrent.
struct SerialLane {
    private(set) var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// True when the caller may enter now; otherwise the caller must `wait` with a continuation.
    mutating func tryEnter() -> Bool {
        if busy { return false }
        busy = true
        return true
    }

    mutating func enqueue(_ continuation: CheckedContinuation<Void, Never>) {
        waiters.append(continuation)
    }

    /// Hands the lane to the next waiter (it stays busy) or frees it.
    mutating func leave() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    var queued: Int { waiters.count }
}
