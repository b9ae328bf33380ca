import Domains
import Foundation
import OpenAPIRuntime

/// Page cursors: the position after (or before) the last row of a page, as
/// `k1.<number>.<id>.<text>` — a sort number, a row id, and a sort text in base64url — each part
/// empty when the list does not need it. The grammar is `Cursor.pattern`, which the OpenAPI
/// document states: every string that matches it is a position some page can start from (a
/// position past the end is an empty page, one a list cannot use is its first page), and every
/// other string is a 400 naming `cursor`. Clients should still treat cursors as opaque.
enum Cursor {
    static let pattern = #"^k1\.(-?[0-9]{1,19})?\.([A-Za-z0-9_]{0,64})\.((?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?)$"#

    static func encode(_ position: PagePosition) -> String {
        let text = position.text.map { base64url(Data($0.utf8)) } ?? ""
        return "k1.\(position.number.map(String.init) ?? "").\(position.id).\(text)"
    }

    static func encode(_ number: Int64) -> String { encode(PagePosition(text: nil, number: number, id: "")) }
    static func encode(id: String) -> String { encode(PagePosition(text: nil, number: nil, id: id)) }

    static func decode(_ cursor: String) throws -> PagePosition {
        let parts = cursor.split(separator: ".", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "k1", isNumber(parts[1]), isID(parts[2]), let text = bytes(parts[3]) else {
            throw DomainError.invalidParameter("cursor", "is not a cursor this server issued (use a page's nextCursor)")
        }
        // A number beyond 64 bits is a position past every row: saturate rather than refuse.
        let number = parts[1].isEmpty ? nil : Int64(parts[1]) ?? (parts[1].hasPrefix("-") ? Int64.min : Int64.max)
        // PostgreSQL cannot compare with a NUL, which no stored name holds anyway.
        let decoded = String(decoding: text, as: UTF8.self).replacingOccurrences(of: "\0", with: "\u{FFFD}")
        return PagePosition(text: parts[3].isEmpty ? nil : decoded, number: number, id: String(parts[2]))
    }

    /// The sort number of a position (nil: from the start).
    static func decodeNumber(_ cursor: String) throws -> Int64? { try decode(cursor).number }

    /// The row id of a position (nil: from the start).
    static func decodeID(_ cursor: String) throws -> String? {
        let id = try decode(cursor).id
        return id.isEmpty ? nil : id
    }

    /// Flaky scores travel as their exact bits, so the next page starts exactly after the last row;
    /// bits that are no score in 0…1 (a hand-made cursor) start from the top.
    static func score(fromBits bits: Int64) -> Double {
        let value = Double(bitPattern: UInt64(bitPattern: bits))
        return value.isFinite && value >= 0 && value <= 1 ? value : 2
    }

    /// A page fetched with one row more than `size`: its rows, and the cursor after its last row
    /// (`null` when nothing follows).
    static func page<Row>(_ rows: [Row], size: Int, after: (Row) throws -> String) rethrows
        -> (rows: ArraySlice<Row>, next: OpenAPIValueContainer)
    {
        let page = rows.prefix(size)
        guard rows.count > size, let last = page.last else { return (page, nil) }
        return (page, OpenAPIValueContainer(stringLiteral: try after(last)))
    }

    static func isNumber(_ s: Substring) -> Bool {
        if s.isEmpty { return true }
        let digits = s.hasPrefix("-") ? s.dropFirst() : s
        return (1...19).contains(digits.count) && digits.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    static func isID(_ s: Substring) -> Bool {
        s.utf8.count <= 64
            && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 }
    }

    /// Base64url without padding (RFC 4648 §5).
    static func base64url(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The bytes of unpadded base64url, or nil when it is not (a length of 4n+1 never is). Leftover
    /// bits of the last character are ignored, so every string the pattern allows decodes.
    static func bytes(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let value: UInt32
            switch c {
            case 65...90: value = UInt32(c - 65)
            case 97...122: value = UInt32(c - 97 + 26)
            case 48...57: value = UInt32(c - 48 + 52)
            case 45: value = 62
            case 95: value = 63
            default: return nil
            }
            buffer = (buffer << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return text.utf8.count % 4 == 1 ? nil : out
    }
}

extension PagePosition {
    /// A position with nothing in it: the first page.
    var isStart: Bool { text == nil && number == nil && id.isEmpty }
}
