import Crypto

/// A 128-bit ULID: 48 bits of milliseconds since the epoch, then 80 random bits,
/// written as 26 Crockford base-32 characters, so IDs sort by creation time.
public struct ULID: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64  // 48-bit timestamp << 16 | 16 random bits
    public let low: UInt64  // 64 random bits

    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    static let lowerAlphabet: [UInt8] = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    public init(milliseconds: UInt64, random: (UInt16, UInt64)) {
        self.high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | UInt64(random.0)
        self.low = random.1
    }

    /// A new ULID for `milliseconds` since the Unix epoch.
    public init(milliseconds: UInt64) {
        var rng = SystemRandomNumberGenerator()
        self.init(milliseconds: milliseconds, random: (UInt16.random(in: .min ... .max, using: &rng), rng.next()))
    }

    public var milliseconds: UInt64 { high >> 16 }

    /// `count` ULIDs of one millisecond, each the one before plus one (from a random start that leaves room
    /// for them): ids that sort in the order they are handed out, for rows written together in that order.
    public static func ascending(count: Int, milliseconds: UInt64) -> some IteratorProtocol<ULID> {
        var rng = SystemRandomNumberGenerator()
        // The top random bit clear: 2^79 ids fit above the start, so adding never carries into the time.
        return ascending(count: count, milliseconds: milliseconds, from: (UInt16.random(in: 0...0x7FFF, using: &rng), rng.next()))
    }

    static func ascending(count: Int, milliseconds: UInt64, from start: (UInt16, UInt64)) -> AnyIterator<ULID> {
        var (high16, low) = start
        var left = count
        return AnyIterator {
            guard left > 0 else { return nil }
            left -= 1
            let id = ULID(milliseconds: milliseconds, random: (high16, low))
            let (sum, carried) = low.addingReportingOverflow(1)
            low = sum
            if carried { high16 += 1 }
            return id
        }
    }

    public var description: String { render(Self.alphabet) }

    /// The lower-case form used in Kaizen's IDs (`ResourceID`).
    public var lowercased: String { render(Self.lowerAlphabet) }

    /// Hands the 26 lower-case characters to `body` without allocating (for writers of many IDs).
    public func withLowercasedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 26) { out in
            fill(out, Self.lowerAlphabet)
            return try body(UnsafeRawBufferPointer(out))
        }
    }

    private func render(_ alphabet: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: 26) { out in
            fill(out, alphabet)
            return 26
        }
    }

    private func fill(_ out: UnsafeMutableBufferPointer<UInt8>, _ alphabet: [UInt8]) {
        // 130 bits of output for 128 bits of value: the first character carries the top 3 bits.
        var hi = high
        var lo = low
        for i in stride(from: 25, through: 0, by: -1) {
            out[i] = alphabet[Int(lo & 0x1F)]
            lo = (lo >> 5) | ((hi & 0x1F) << 59)
            hi >>= 5
        }
    }

    /// Parses the 26-character form (case-insensitive, Crockford aliases I/L → 1, O → 0).
    public init?(string: some StringProtocol) {
        let bytes = Array(string.utf8)
        guard bytes.count == 26 else { return nil }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            guard let value = Self.decode(byte) else { return nil }
            if i == 0 && value > 7 { return nil }  // would overflow 128 bits
            hi = (hi << 5) | (lo >> 59)
            lo = (lo << 5) | UInt64(value)
        }
        self.high = hi
        self.low = lo
    }

    static func decode(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return decode(byte - 32)
        case UInt8(ascii: "O"): return 0
        case UInt8(ascii: "I"), UInt8(ascii: "L"): return 1
        default:
            guard let index = alphabet.firstIndex(of: byte) else { return nil }
            return UInt8(index)
        }
    }
}
