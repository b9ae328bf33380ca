import Foundation

/// Strings in the order of their UTF-8 bytes — how PostgreSQL's C collation orders text, so rows written in
/// this order reach a text index in its own order.
///
/// Sorting `[String]` with a comparator over `utf8` cost 0.5 s for 100,000 case keys (`swiftc -O`): every
/// comparison retains both strings and walks their shared prefix byte by byte. Here the bytes are packed
/// once, each string is ranked by the eight bytes after the prefix all of them share, and only equal ranks
/// compare the rest: 100,000 keys in tens of milliseconds.
public enum ByteOrder {
    /// The indices of `strings`, ordered by their UTF-8 bytes (a shorter string before its extensions).
    public static func sortedIndices(_ strings: [String]) -> [Int] {
        guard strings.count > 1 else { return Array(strings.indices) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(strings.reduce(0) { $0 + $1.utf8.count })
        var starts: [Int] = []
        starts.reserveCapacity(strings.count + 1)
        for string in strings {
            starts.append(bytes.count)
            bytes.append(contentsOf: string.utf8)
        }
        starts.append(bytes.count)
        return bytes.withUnsafeBufferPointer { buffer -> [Int] in
            func slice(_ index: Int) -> UnsafeBufferPointer<UInt8> {
                UnsafeBufferPointer(rebasing: buffer[starts[index]..<starts[index + 1]])
            }
            // The prefix every string shares (ids made together share their time, keys their directory).
            let first = slice(0)
            var shared = first.count
            for index in 1..<strings.count where shared > 0 {
                let other = slice(index)
                var length = 0
                while length < min(shared, other.count), first[length] == other[length] { length += 1 }
                shared = length
            }
            // Big-endian, zero-padded: comparing ranks compares those bytes; a string that ends sooner ranks
            // no higher than its extensions, and equal ranks fall to the full comparison.
            var ranked: [(rank: UInt64, index: Int)] = []
            ranked.reserveCapacity(strings.count)
            for index in strings.indices {
                let bytes = slice(index)
                var rank: UInt64 = 0
                for offset in 0..<8 {
                    let at = shared + offset
                    rank = rank << 8 | UInt64(at < bytes.count ? bytes[at] : 0)
                }
                ranked.append((rank, index))
            }
            ranked.sort { left, right in
                if left.rank != right.rank { return left.rank < right.rank }
                let (a, b) = (slice(left.index), slice(right.index))
                let common = min(a.count, b.count)
                if common > 0, let pa = a.baseAddress, let pb = b.baseAddress {
                    let order = memcmp(pa, pb, common)
                    if order != 0 { return order < 0 }
                }
                return a.count < b.count
            }
            return ranked.map(\.index)
        }
    }

    /// `strings` ordered by their UTF-8 bytes.
    public static func sorted(_ strings: [String]) -> [String] {
        sortedIndices(strings).map { strings[$0] }
    }
}
