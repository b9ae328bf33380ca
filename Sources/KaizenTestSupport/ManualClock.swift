import Synchronization

/// A clock a test moves by hand, for the closures the server takes as clocks (rate limits, quotas,
/// token expiry). A class, so the closures retain it: a server that outlives its test (a shutdown
/// abandoned on a loaded machine) must not call into a test's finished stack frame — capturing a
/// local `Mutex` did exactly that.
public final class ManualClock: Sendable {
    private let value: Mutex<UInt64>

    public init(_ start: UInt64) { value = Mutex(start) }

    public var now: UInt64 { value.withLock { $0 } }

    public func advance(by delta: UInt64) { value.withLock { $0 &+= delta } }

    /// Advances by `delta` and returns the new time: a clock that moves each time it is read.
    public func tick(_ delta: UInt64) -> UInt64 { value.withLock { $0 &+= delta; return $0 } }
}
