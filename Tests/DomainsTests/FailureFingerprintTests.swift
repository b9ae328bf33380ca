import Testing

@testable import Domains

@Suite struct FailureFingerprintTests {
    @Test func masksWhatVariesBetweenOccurrences() {
        #expect(FailureFingerprint.normalize("timeout after 3012 ms on 10.0.0.7:5432") == "timeout after <n> ms on <ip>")
        #expect(FailureFingerprint.normalize("order 6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab not found") == "order <uuid> not found")
        #expect(FailureFingerprint.normalize("object at 0x7f9aaa190350 freed") == "object at <addr> freed")
        #expect(FailureFingerprint.normalize("cannot open /var/lib/app/cache/42.db") == "cannot open <path>")
        #expect(FailureFingerprint.normalize("commit deadbeef01 mismatch") == "commit <hex> mismatch")
        #expect(FailureFingerprint.normalize("run run_01m82frg0avkhgmcx1prntt7d0 failed") == "run <id> failed")
        #expect(FailureFingerprint.normalize("expected  1,\tgot 2") == "expected <n>, got <n>")
    }

    @Test func sameProblemSameFingerprintDifferentProblemDifferent() {
        let a = FailureFingerprint.of(type: "TimeoutError", message: "timeout after 3012 ms on 10.0.0.7:5432", trace: "at db.connect (db.js:10)\nat main")
        let b = FailureFingerprint.of(type: "TimeoutError", message: "timeout after 2990 ms on 10.0.0.9:5432", trace: "at db.connect (db.js:12)\nat main")
        let c = FailureFingerprint.of(type: "AssertionError", message: "timeout after 3012 ms on 10.0.0.7:5432", trace: nil)
        let d = FailureFingerprint.of(type: "TimeoutError", message: "connection refused on 10.0.0.7:5432", trace: "at db.connect (db.js:10)")
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
        #expect(a.count == 16)
        // Only the first line of the message counts: the rest is often a dump.
        #expect(FailureFingerprint.of(type: "E", message: "boom\nstate=1", trace: nil)
            == FailureFingerprint.of(type: "E", message: "boom\nstate=2 extra", trace: nil))
    }
}
