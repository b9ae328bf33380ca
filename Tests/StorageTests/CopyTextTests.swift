import Domains
import NIOCore
import Testing

@testable import Storage

/// The COPY text the roll-up stages its rows with: a wrong byte is a wrong statistic, or a failed roll-up.
@Suite struct CopyTextTests {
    @Test func integersAreWrittenAsTabbedDecimals() {
        var buffer = ByteBuffer()
        for value in [0, 7, 10, 1234567890, -42, Int.max, Int.min] { buffer.writeCopyInt(value) }
        buffer.writeCopyInt(Int64(9_007_199_254_740_993))
        buffer.writeCopyInt(UInt8(255))
        #expect(
            String(buffer: buffer)
                == "\t0\t7\t10\t1234567890\t-42\t\(Int.max)\t\(Int.min)\t9007199254740993\t255")
    }

    @Test func fieldsEscapeWhatCopyWouldSplitOn() {
        #expect(CopyText.field("plain_id") == "plain_id")
        #expect(CopyText.field("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re")
        #expect(CopyText.nullable(nil) == "\\N")
        #expect(CopyText.nullable("") == "\\N")
        #expect(CopyText.array(["x", "y\"z"]) == "{\"x\",\"y\\\\\"z\"}")
    }

    /// A case's steps, stored as one JSON text: whatever a test names its steps, they come back as pushed.
    @Test func stepsRoundTripThroughTheirStoredText() throws {
        let steps = [
            FlatStep(ordinal: 0, parent: nil, depth: 0, name: "open \"cart\"\t\\ ✓ \u{1}", status: .passed, durationMs: 12, attachments: []),
            FlatStep(ordinal: 1, parent: 0, depth: 1, name: "line\nbreak", status: .failed, durationMs: Int64(1) << 40,
                     attachments: ["att_1", "a\"b"]),
            FlatStep(ordinal: 2, parent: nil, depth: 0, name: "", status: .skipped, durationMs: 0, attachments: []),
        ]
        let text = StepsText.encode(steps)
        #expect(text.hasPrefix("[[0,null,0,"))
        #expect(try #require(StepsText.decode(text)) == steps)
        #expect(StepsText.decode(StepsText.encode([])) == [])
        // Not what `encode` writes: refused, not half read.
        #expect(StepsText.decode("[[0,null,0,\"x\",\"passed\",1]]") == nil)
        #expect(StepsText.decode("{}") == nil)
    }
}
