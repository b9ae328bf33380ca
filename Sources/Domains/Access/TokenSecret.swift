import Crypto

/// Bearer secrets: `krt_` followed by 43 base-62 characters (256 bits of entropy).
/// Only the SHA-256 of a secret is stored; the plaintext is shown once.
public enum TokenSecret {
    public static let prefix = "krt_"
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let bodyLength = 43

    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        var body = [UInt8]()
        body.reserveCapacity(bodyLength)
        // Rejection sampling keeps each character uniform over the 62 symbols.
        while body.count < bodyLength {
            let byte = UInt8.random(in: 0...255, using: &rng)
            if byte < 248 { body.append(alphabet[Int(byte % 62)]) }
        }
        return prefix + String(decoding: body, as: UTF8.self)
    }

    /// True when the string has the shape of a Kaizen secret (cheap pre-check before hashing and lookup).
    public static func looksValid(_ secret: some StringProtocol) -> Bool {
        guard secret.hasPrefix(prefix), secret.utf8.count == prefix.utf8.count + bodyLength else { return false }
        // Range checks, not a search of the alphabet: this runs on every authenticated request.
        return secret.utf8.dropFirst(prefix.utf8.count).allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
        }
    }

    /// Lower-case hex SHA-256 of the secret: what the catalog stores and looks up.
    public static func hash(_ secret: some StringProtocol) -> String {
        Hex.string(SHA256.hash(data: Array(secret.utf8)))
    }

    /// The first characters of a secret, safe to show in listings so users can tell tokens apart.
    public static func hint(_ secret: String) -> String {
        String(secret.prefix(prefix.count + 6))
    }
}
