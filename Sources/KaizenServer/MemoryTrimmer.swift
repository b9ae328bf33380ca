import CAllocator
import Dispatch
import Logging
import ServiceLifecycle
import Tenancy

/// Gives memory that big finalizes and roll-ups freed back to the system. glibc keeps freed heap
/// pages in its arenas for reuse, so without this a server that once took a 100k-case run stays at
/// that size for good (measured: 267 MB resident after a load that peaked at 306 MB, idle ~40 MB).
///
/// Every `period`, if ingest work finished since the last trim and no finalize is in flight, it calls
/// `malloc_trim(0)` — on a dispatch thread, because it walks every arena and must not hold a thread of
/// the cooperative pool. Under a continuous push it waits for a gap; at worst it trims once per period.
struct MemoryTrimmer: Service {
    let activity: IngestActivity
    let logger: Logger
    var period: Duration = .seconds(5)

    /// Whether to trim now: work finished since the last trim, and none is in flight.
    static func shouldTrim(completed: Int, trimmedAt: Int, inFlight: Int) -> Bool {
        completed != trimmedAt && inFlight == 0
    }

    func run() async throws {
        // Stops at once on a graceful shutdown: nothing is left to trim for.
        await cancelWhenGracefulShutdown {
            var trimmedAt = activity.completed
            while !Task.isCancelled {
                do { try await Task.sleep(for: period) } catch { return }
                let completed = activity.completed
                guard Self.shouldTrim(completed: completed, trimmedAt: trimmedAt, inFlight: activity.current) else { continue }
                trimmedAt = completed
                let released = await Self.trim()
                logger.debug("returned freed memory to the system", metadata: ["released": "\(released)"])
            }
        }
    }

    /// Returns whether glibc released any memory (always false where there is no glibc).
    static func trim() async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .utility).async {
                continuation.resume(returning: kaizen_malloc_trim() == 1)
            }
        }
    }
}
