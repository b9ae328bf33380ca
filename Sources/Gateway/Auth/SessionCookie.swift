import Crypto
import Domains
import Foundation
import HTTPTypes

/// Browser sessions: the sign-in token in an `HttpOnly` cookie, and the CSRF proof that state-changing
/// requests authenticated by that cookie must carry.
///
/// The proof is an HMAC of the session's token id under a server key (every node shares it through the
/// catalog), so nothing is stored per session and a proof is worthless for any other session.
public struct SessionCookies: Sendable {
    public static let name = "kaizen_session"
    let key: SymmetricKey

    public init(keyHex: String) {
        self.key = SymmetricKey(data: Array(keyHex.utf8))
    }

    /// The CSRF proof of a session.
    public func csrfToken(sessionTokenID: String) -> String {
        Hex.string(HMAC<SHA256>.authenticationCode(for: Array(("csrf:" + sessionTokenID).utf8), using: key))
    }

    func verify(csrf: String, sessionTokenID: String) -> Bool {
        guard let given = Hex.bytes(csrf) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Array(("csrf:" + sessionTokenID).utf8), using: key)
    }

    /// The session secret in a `Cookie` header, if any. Scans the bytes in place: this runs on every
    /// request a browser makes, and must cost no more than reading a bearer token.
    static func secret(in headers: HTTPFields) -> Substring? {
        for field in headers where field.name == .cookie {
            let value = field.value
            var utf8 = value.utf8[...]
            while !utf8.isEmpty {
                while utf8.first == UInt8(ascii: " ") || utf8.first == UInt8(ascii: ";") { utf8 = utf8.dropFirst() }
                let end = utf8.firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
                let pair = utf8[utf8.startIndex..<end]
                if pair.starts(with: Self.prefixBytes) {
                    return Substring(value.utf8[pair.index(pair.startIndex, offsetBy: Self.prefixBytes.count)..<end])
                }
                utf8 = utf8[end...]
            }
        }
        return nil
    }

    static let prefixBytes = Array((name + "=").utf8)

    /// `Set-Cookie` for a new session (`secure` when the server is reached over TLS).
    public static func setCookie(secret: String, maxAgeSeconds: Int, secure: Bool) -> String {
        "\(name)=\(secret); Path=/; Max-Age=\(maxAgeSeconds); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// `Set-Cookie` that removes the session cookie.
    public static func clearCookie(secure: Bool) -> String {
        "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }
}
