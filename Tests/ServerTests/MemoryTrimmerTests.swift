import CAllocator
import Testing

@testable import KaizenServer

/// The trimmer gives memory back only after work, and never while a finalize is in flight; and the
/// trim really returns freed heap pages to the system (glibc keeps them otherwise).
@Suite struct MemoryTrimmerTests {
    @Test func trimsAfterWorkWhenNoFinalizeIsInFlight() {
        #expect(!MemoryTrimmer.shouldTrim(completed: 0, trimmedAt: 0, inFlight: 0))  // nothing happened
        #expect(MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 0, inFlight: 0))
        #expect(!MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 0, inFlight: 1))  // wait for a gap
        #expect(!MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 3, inFlight: 0))  // already trimmed
    }

    #if os(Linux)
    /// After the server's allocator settings, a 1 MB block gets pages of its own (mmapped, so freeing it
    /// gives them back), even after a 4 MB block was freed — which by default raises glibc's threshold to 4 MB.
    @Test func largeBlocksAreMappedOnTheirOwnAfterConfiguring() {
        MemoryTrimmer.configureAllocator()
        let big = UnsafeMutableRawPointer.allocate(byteCount: 4 << 20, alignment: 16)
        big.deallocate()
        // Asked of the block itself, not of the process's mmapped total, which the tests running beside this
        // one move: glibc marks a chunk of its own pages with IS_MMAPPED (0x2) in the size word before it.
        // A free chunk other tests left in the heap can still serve a request before the mmap threshold is
        // consulted; those are held (so the next request cannot reuse them) until a block comes from mmap.
        // Without the settings none would: the threshold would have risen to 4 MB.
        var held: [UnsafeMutableRawPointer] = []
        defer { for block in held { block.deallocate() } }
        var mapped = false
        for _ in 0..<256 where !mapped {
            let block = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
            held.append(block)
            mapped = block.load(fromByteOffset: -8, as: UInt64.self) & 0x2 != 0
        }
        #expect(mapped)
    }

    @Test func trimReleasesFreedHeapPages() async {
        // 40 MB in 8 KB blocks (below the mmap threshold: on the heap), then one block after them that
        // stays, so the freed ones sit in the middle of the heap where free() alone never returns them.
        let blocks = (0..<5_000).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 16) }
        for block in blocks { block.initializeMemory(as: UInt8.self, repeating: 1, count: 8192) }
        let keeper = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { keeper.deallocate() }
        for block in blocks { block.deallocate() }
        #expect(await MemoryTrimmer.trim())
    }
    #endif
}
