/// A case key's 128-bit digest: what the workspace actor's ingest caches (case ids, baseline statuses)
/// are keyed by, 16 bytes inline instead of a heap string per case and per cache — measured at about
/// 110 bytes a case for both caches against 330 with the keys as strings.
///
/// Two SipHash-1-3 values (the standard library's `Hasher`) under the process's random seed. The
/// caches live in one process only, so the digests never need to be stable across restarts; two keys
/// of a project sharing a digest has a chance of about n²/2¹²⁹ (10⁻²⁸ for a million keys), and cannot
/// be aimed at by whoever names the cases, since the seed is secret (unless an operator sets
/// `SWIFT_DETERMINISTIC_HASHING`, which no deployment of Kaizen does).
public struct CaseKeyDigest: Hashable, Sendable {
    let first: UInt64
    let second: UInt64

    public init(_ key: String) {
        // The key's UTF-8 bytes, as PostgreSQL compares keys (byte for byte, not by Unicode equivalence).
        // A short key lives inside the String value with no buffer to point at: copied to the stack, since
        // making it a heap string (`withUTF8`) cost an allocation per key.
        (first, second) =
            key.utf8.withContiguousStorageIfAvailable { Self.hash(UnsafeRawBufferPointer($0)) }
            ?? withUnsafeTemporaryAllocation(of: UInt8.self, capacity: key.utf8.count) { buffer in
                _ = buffer.initialize(from: key.utf8)
                return Self.hash(UnsafeRawBufferPointer(buffer))
            }
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var a = Hasher()
        a.combine(UInt8(0))
        a.combine(bytes: bytes)
        var b = Hasher()
        b.combine(UInt8(1))
        b.combine(bytes: bytes)
        return (UInt64(truncatingIfNeeded: a.finalize()), UInt64(truncatingIfNeeded: b.finalize()))
    }

    /// Each half is already a uniform hash; the dictionary mixes one of them again with its own seed.
    public func hash(into hasher: inout Hasher) { hasher.combine(first) }

    /// The digests of `keys`, in order.
    public static func of<S: Sequence>(_ keys: S) -> [CaseKeyDigest] where S.Element == String {
        keys.map(CaseKeyDigest.init)
    }
}

/// A project's inventory ids by case key digest, compact: the ULID of a `case_…` id, 16 bytes inline.
/// An id not of that form (data written by something other than Kaizen) is kept as text beside them.
public struct CaseIDMap: Sendable {
    /// One of the map's ids.
    public enum ID: Sendable, Equatable {
        case ulid(ULID)
        case text(String)

        public var string: String {
            switch self {
            case .ulid(let ulid): ResourceID.string(.testCase, ulid)
            case .text(let text): text
            }
        }
    }

    private var compact: [CaseKeyDigest: ULID] = [:]
    private var other: [CaseKeyDigest: String] = [:]

    public init() {}

    public var count: Int { compact.count + other.count }
    public var isEmpty: Bool { compact.isEmpty && other.isEmpty }

    public subscript(digest: CaseKeyDigest) -> ID? {
        if let ulid = compact[digest] { return .ulid(ulid) }
        return other[digest].map(ID.text)
    }

    public func contains(_ digest: CaseKeyDigest) -> Bool { compact[digest] != nil || other[digest] != nil }

    public mutating func set(_ digest: CaseKeyDigest, ulid: ULID) { compact[digest] = ulid }

    /// Takes a stored id: compact when it is Kaizen's own form.
    public mutating func set(_ digest: CaseKeyDigest, id: String) {
        if let ulid = ResourceID.ulid(id, prefix: .testCase), ResourceID.string(.testCase, ulid) == id {
            compact[digest] = ulid
        } else {
            other[digest] = id
        }
    }

    public mutating func reserveCapacity(_ n: Int) { compact.reserveCapacity(n) }

    /// The ids of `digests` only (those it holds).
    public func restricted(to digests: [CaseKeyDigest]) -> CaseIDMap {
        var out = CaseIDMap()
        out.reserveCapacity(digests.count)
        for digest in digests {
            if let ulid = compact[digest] { out.compact[digest] = ulid } else if let id = other[digest] { out.other[digest] = id }
        }
        return out
    }

    /// Adds `other`'s ids (ids never change, so either side's is right for a digest both hold).
    public mutating func merge(_ other: CaseIDMap) {
        compact.merge(other.compact) { mine, _ in mine }
        self.other.merge(other.other) { mine, _ in mine }
    }
}
