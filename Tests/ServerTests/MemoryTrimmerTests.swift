import Testing

@testable import KaizenServer

/// The trimmer gives memory back only after work, and never while a finalize is in flight.
@Suite struct MemoryTrimmerTests {
    @Test func trimsAfterWorkWhenNoFinalizeIsInFlight() async throws {
        #expect(!MemoryTrimmer.shouldTrim(completed: 0, trimmedAt: 0, inFlight: 0))  // nothing happened
        #expect(MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 0, inFlight: 0))
        #expect(!MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 0, inFlight: 1))  // wait for a gap
        #expect(!MemoryTrimmer.shouldTrim(completed: 3, trimmedAt: 3, inFlight: 0))  // already trimmed
        // The call itself returns (it runs off the cooperative pool); whether pages were released
        // depends on the heap, so only that it completes is asserted.
        _ = await MemoryTrimmer.trim()
    }
}
