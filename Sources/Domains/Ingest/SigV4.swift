import Crypto
import Foundation

/// AWS Signature Version 4 presigning (query-string authentication) for S3-compatible stores.
///
/// Follows "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)" of the S3 API
/// reference; the test suite checks it against the example presigned URL published there.
/// The payload is always `UNSIGNED-PAYLOAD`: a presigned URL is made before the body exists.
public struct SigV4Presigner: Sendable {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        /// Temporary credentials (STS) carry a session token, sent as `X-Amz-Security-Token`.
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to presign. `host` includes a non-default port (`127.0.0.1:9000`), as the Host header does.
    public struct Request: Sendable {
        public var method: String
        public var scheme: String
        public var host: String
        /// Unencoded path, `/bucket/key`; each segment is URI-encoded once (S3 does not double-encode).
        public var path: String
        /// Further query parameters, signed with the rest (e.g. `response-content-disposition`).
        public var query: [(String, String)]
        /// Headers the client must send verbatim; they are signed along with `host`.
        public var headers: [(String, String)]

        public init(
            method: String, scheme: String, host: String, path: String, query: [(String, String)] = [],
            headers: [(String, String)] = []
        ) {
            self.method = method
            self.scheme = scheme
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// The intermediate strings, exposed so a test can compare each with the published example.
    public struct Signed: Sendable {
        public let canonicalRequest: String
        public let stringToSign: String
        public let signature: String
        public let url: String
    }

    public func presign(_ request: Request, date: Date, expiresSeconds: Int) -> Signed {
        let (amzDate, day) = Self.timestamps(date)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        var headers = request.headers.map { ($0.0.lowercased(), Self.trimmed($0.1)) }
        headers.append(("host", request.host))
        headers.sort { $0.0 < $1.0 }
        let signedHeaders = headers.map(\.0).joined(separator: ";")

        var query = request.query
        query.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"))
        query.append(("X-Amz-Date", amzDate))
        query.append(("X-Amz-Expires", String(expiresSeconds)))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        query.append(("X-Amz-SignedHeaders", signedHeaders))
        let encoded: [(key: String, value: String)] = query.map {
            (Self.encode($0.0, keepSlash: false), Self.encode($0.1, keepSlash: false))
        }
        let sorted = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        let canonicalQuery = sorted.map { pair in pair.key + "=" + pair.value }.joined(separator: "&")
        let path = Self.encode(request.path.isEmpty ? "/" : request.path, keepSlash: true)

        let canonicalRequest = [
            request.method.uppercased(), path, canonicalQuery,
            headers.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, "UNSIGNED-PAYLOAD",
        ].joined(separator: "\n")
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey(day: day)))
        let url = "\(request.scheme)://\(request.host)\(path)?\(canonicalQuery)&X-Amz-Signature=\(signature)"
        return Signed(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, url: url)
    }

    func signingKey(day: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        return mac(mac(mac(mac(secret, day), region), service), "aws4_request")
    }

    /// URI encoding as SigV4 defines it: unreserved characters stay, every other byte is `%XX` (upper case).
    public static func encode(_ value: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        let hexDigits = Array("0123456789ABCDEF")
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out.append("%")
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        Hex.string(bytes)
    }

    /// `20130524T000000Z` and `20130524` in UTC, computed from the epoch (no formatter, no locale).
    static func timestamps(_ date: Date) -> (String, String) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's civil-from-days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let day = pad(y, 4) + pad(m, 2) + pad(d, 2)
        let time = pad(secondOfDay / 3_600, 2) + pad(secondOfDay % 3_600 / 60, 2) + pad(secondOfDay % 60, 2)
        return ("\(day)T\(time)Z", day)
    }
}
