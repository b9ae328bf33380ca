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

    /// Set once at start: large buffers (a finalize's document and row chunks, a roll-up's arrays) get
    /// pages of their own that go back to the system when freed, instead of glibc raising its mmap
    /// threshold to the largest freed block and carving later ones out of the heap, where they fragment
    /// it; and two arenas instead of eight per core hold less free memory between bursts. Measured on
    /// `ops/load.sh rollups`: peak 182 MB above idle instead of 253–281 MB, and 79 MB a minute after
    /// instead of 104–126 MB, with finalize and roll-up times unchanged. Operators' MALLOC_* variables win.
    static let mmapThresholdBytes: Int32 = 256 * 1024
    static let arenaMax: Int32 = 2

    @discardableResult
    static func configureAllocator() -> Int {
        Int(kaizen_malloc_configure(mmapThresholdBytes, arenaMax))
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
