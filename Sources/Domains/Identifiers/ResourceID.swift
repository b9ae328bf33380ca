/// Type prefixes of Kaizen IDs, as in the API: `ws_01h…`, `prj_01h…`.
public enum IDPrefix: String, Sendable, CaseIterable {
    case workspace = "ws"
    case project = "prj"
    case run = "run"
    case testCase = "case"
    case attachment = "att"
    case upload = "upl"
    case token = "tok"
    case user = "usr"
    case job = "job"
    case defect = "dft"
    case event = "evt"
    case invitation = "inv"
    case accountLink = "lnk"
    case audit = "aud"
    case webhook = "whk"
    case delivery = "dlv"
    case notification = "ntf"
    /// A running server process (live streams tell their own relayed messages apart by it).
    case node = "node"
}

/// Creates and checks type-prefixed ULIDs.
public enum ResourceID {
    /// A new ID such as `prj_01JD3…`, lower-cased like the examples in the API documents.
    public static func make(_ prefix: IDPrefix, milliseconds: UInt64 = Clock.nowMilliseconds()) -> String {
        string(prefix, ULID(milliseconds: milliseconds))
    }

    /// The ID `<prefix>_<ulid>` in its lower-case form.
    public static func string(_ prefix: IDPrefix, _ ulid: ULID) -> String {
        "\(prefix.rawValue)_\(ulid.lowercased)"
    }

    /// The ULID of an ID of `prefix`; nil when `id` is not one.
    public static func ulid(_ id: String, prefix: IDPrefix) -> ULID? {
        let expected = prefix.rawValue + "_"
        guard id.hasPrefix(expected) else { return nil }
        return ULID(string: id.dropFirst(expected.count))
    }

    /// True when `id` is `<prefix>_<ULID>`. Used to turn malformed path IDs into 404s without a query.
    public static func isValid(_ id: String, prefix: IDPrefix) -> Bool {
        let expected = prefix.rawValue + "_"
        guard id.hasPrefix(expected) else { return false }
        return ULID(string: id.dropFirst(expected.count)) != nil
    }
}

/// Wall-clock time in one place, so Domains code never reads the clock implicitly.
public enum Clock {
    public static func nowMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    /// Monotonic nanoseconds, for token buckets and cache ages (only differences are meaningful).
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
