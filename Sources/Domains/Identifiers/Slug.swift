/// Slugs name workspaces and projects in URLs: 1–63 characters of `a-z`, `0-9` and `-`,
/// starting and ending with a letter or digit.
public enum Slug {
    public static let maxLength = 63

    /// Nil when valid, else a sentence saying what is wrong.
    public static func problem(_ slug: String) -> String? {
        let bytes = Array(slug.utf8)
        if bytes.isEmpty { return "must not be empty" }
        if bytes.count > maxLength { return "must be at most \(maxLength) characters" }
        for byte in bytes {
            let ok = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
            if !ok { return "may contain only lower-case letters, digits and '-'" }
        }
        if bytes.first == UInt8(ascii: "-") || bytes.last == UInt8(ascii: "-") {
            return "must start and end with a letter or digit"
        }
        return nil
    }
}
