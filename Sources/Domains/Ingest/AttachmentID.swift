/// What kensho/v1 accepts as an attachment id and as a sha256.
public enum AttachmentID {
    /// 1–128 of A-Z a-z 0-9 _ - . and not made of dots only: an id is a URL path segment
    /// (`/v1/uploads/{upload}/{id}`), where `.` and `..` would be resolved away by clients.
    public static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45 || c == 46
            }
            && !id.utf8.allSatisfy { $0 == 46 }
    }

    public static let rule = "must be 1–128 of A-Z a-z 0-9 _ - . and not only dots"

    public static func isSHA256(_ value: String) -> Bool {
        value.utf8.count == 64 && value.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
