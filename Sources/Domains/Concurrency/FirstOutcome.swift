import Synchronization

/// The first result of a race, delivered once to one waiter (whichever comes first: result or waiter).
/// The one primitive behind every "await at most until a deadline" in Kaizen.
public final class FirstOutcome<T: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<T, any Error>?)
        case ready(Result<T, any Error>)
        case delivered
    }
    private let state = Mutex<State>(.pending(nil))

    public init() {}

    /// Offers a result; only the first one offered counts.
    public func resume(with result: Result<T, any Error>) {
        let waiter: CheckedContinuation<T, any Error>? = state.withLock { state in
            switch state {
            case .pending(let continuation?):
                state = .delivered
                return continuation
            case .pending(nil):
                state = .ready(result)
                return nil
            case .ready, .delivered:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    /// The first result offered (waits for one).
    public func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<T, any Error>? = state.withLock { state in
                switch state {
                case .pending:
                    state = .pending(continuation)
                    return nil
                case .ready(let result):
                    state = .delivered
                    return result
                case .delivered:
                    return .failure(CancellationError())
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// Waits for `operation` at most `limit`: its result, or nil when the limit passed first.
///
/// The operation runs in its own task and the caller waits on the race, not on that task: a call that
/// ignores cancellation (a connection attempt to an unreachable server, a task that never ends) must not
/// hold the caller past its deadline. An abandoned operation is cancelled.
public func awaitAtMost<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T)
    async throws -> T?
{
    let outcome = FirstOutcome<T?>()
    let work = Task {
        do { outcome.resume(with: .success(try await operation())) } catch { outcome.resume(with: .failure(error)) }
    }
    let timer = Task {
        try await Task.sleep(for: limit)
        outcome.resume(with: .success(nil))
        work.cancel()
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await outcome.value()
    } onCancel: {
        work.cancel()
        outcome.resume(with: .failure(CancellationError()))
    }
}
