import Domains
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore

/// One rule at the boundary for text PostgreSQL cannot store: the NUL character (U+0000).
///
/// - In a query parameter or a path it is refused with 400 naming the parameter.
/// - In a JSON body it is refused with 422 and the pointer of every string holding one — except in
///   the free text of a kensho/v1 finalize (error messages and traces, which real test output does
///   contain NULs in), where `KenshoJSON` replaces it with U+FFFD.
///
/// Bodies are only parsed a second time when their bytes hold the escape `\u0000`, so ordinary
/// requests pay one `memmem`-like scan.
struct NULTextMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        try Self.checkURI(request.uri)
        guard request.method != .get, request.method != .head,
            request.headers[.contentType]?.lowercased().contains("json") == true,
            !request.uri.path.hasPrefix("/v1/uploads/"),
            // A kensho document is checked by KenshoDecodeMiddleware, which collects it (see there).
            !KenshoDecodeMiddleware<Context>.applies(to: request)
        else { return try await next(request, context) }
        var request = request
        // Already collected within the size limit by BodyLimitMiddleware.
        let buffer = try await request.collectBody(upTo: .max)
        try Self.refuseNUL(in: buffer, kensho: false)
        return try await next(request, context)
    }

    /// 422 with the pointer of every string of the JSON body that holds a NUL (for a kensho document,
    /// outside its free text).
    static func refuseNUL(in buffer: ByteBuffer, kensho: Bool) throws {
        let problems = buffer.withUnsafeReadableBytes { bytes in
            Self.containsEscapedNUL(bytes) ? Self.pointers(in: Data(bytes)) : []
        }
        let allowed = kensho ? problems.filter { !Self.isKenshoFreeText($0) } : problems
        if !allowed.isEmpty {
            throw DomainError.validation(allowed.map { FieldProblem(pointer: $0, message: "must not contain the NUL character (U+0000)") })
        }
    }

    static func checkURI(_ uri: URI) throws {
        let raw = uri.string
        guard raw.range(of: "%00", options: .caseInsensitive) != nil || raw.utf8.contains(0) else { return }
        if uri.path.contains("\0") || uri.path.range(of: "%00", options: .caseInsensitive) != nil {
            throw DomainError.invalidParameter("path", in: "path", "must not contain the NUL character (U+0000)")
        }
        for (name, value) in uri.queryParameters
        where name.contains("\0") || name.range(of: "%00", options: .caseInsensitive) != nil || value.contains("\0") {
            throw DomainError.invalidParameter(String(name).replacingOccurrences(of: "\0", with: "\u{FFFD}"), in: "query",
                "must not contain the NUL character (U+0000)")
        }
    }

    /// True when the bytes hold `\u0000` (a false positive such as an escaped backslash before
    /// `u0000` only costs the exact check).
    static func containsEscapedNUL(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let needle = Array(#"\u0000"#.utf8)
        guard bytes.count >= needle.count else { return false }
        var i = 0
        let end = bytes.count - needle.count
        while i <= end {
            if bytes[i] == 0x5C, bytes[i + 1] == 0x75, bytes[i + 2] == 0x30, bytes[i + 3] == 0x30, bytes[i + 4] == 0x30,
                bytes[i + 5] == 0x30
            {
                return true
            }
            i += 1
        }
        return false
    }

    /// JSON pointers of every string (or member name) holding a NUL; empty when the body is not JSON
    /// (the decoder reports that with its own error).
    static func pointers(in data: Data) -> [String] {
        guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return [] }
        var found: [String] = []
        func walk(_ value: Any, _ pointer: String) {
            guard found.count < 100 else { return }
            switch value {
            case let text as String:
                if text.contains("\0") { found.append(pointer) }
            case let object as [String: Any]:
                for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                    let child = pointer + "/" + jsonPointerEscape(key.replacingOccurrences(of: "\0", with: "\u{FFFD}"))
                    if key.contains("\0") { found.append(child) }
                    walk(member, child)
                }
            case let array as [Any]:
                for (index, element) in array.enumerated() { walk(element, pointer + "/\(index)") }
            default:
                break
            }
        }
        walk(root, "")
        return found
    }

    /// Error messages and traces of cases and of their attempts: free text a NUL is replaced in.
    static func isKenshoFreeText(_ pointer: String) -> Bool {
        let parts = pointer.split(separator: "/", omittingEmptySubsequences: false)
        // "", "cases", N, "error", "message|trace"  or  "", "cases", N, "retries", M, "error", "message|trace"
        func isIndex(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy(\.isNumber) }
        guard parts.count >= 5, parts[0].isEmpty, parts[1] == "cases", isIndex(parts[2]),
            let last = parts.last, last == "message" || last == "trace", parts[parts.count - 2] == "error"
        else { return false }
        if parts.count == 5 { return true }
        return parts.count == 7 && parts[3] == "retries" && isIndex(parts[4])
    }
}
