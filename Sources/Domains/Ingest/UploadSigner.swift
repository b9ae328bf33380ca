import Crypto
import Foundation

/// Signs and checks presigned upload URLs: HMAC-SHA256 over the method, path, workspace and expiry,
/// with a key every node shares (kept in the catalog).
public struct UploadSigner: Sendable {
    let key: SymmetricKey

    public init(secretHex: String) {
        self.key = SymmetricKey(data: Array(secretHex.utf8))
    }

    public static let urlLifetimeSeconds = 5 * 60
    public static let sessionLifetimeSeconds = 30 * 60

    func message(uploadID: String, attachmentID: String, workspaceID: String, expires: Int) -> [UInt8] {
        Array("PUT\n/v1/uploads/\(uploadID)/\(attachmentID)\n\(workspaceID)\n\(expires)".utf8)
    }

    public func signature(uploadID: String, attachmentID: String, workspaceID: String, expires: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: message(uploadID: uploadID, attachmentID: attachmentID, workspaceID: workspaceID, expires: expires),
            using: key)
        return Hex.string(mac)
    }

    public enum Verdict: Sendable, Equatable {
        case valid
        case expired
        case badSignature
    }

    public func verify(
        uploadID: String, attachmentID: String, workspaceID: String, expires: Int, signature: String, now: Date
    ) -> Verdict {
        let expected = self.signature(uploadID: uploadID, attachmentID: attachmentID, workspaceID: workspaceID, expires: expires)
        // Constant-time comparison: the length is public, the content is not.
        let a = Array(expected.utf8)
        let b = Array(signature.lowercased().utf8)
        guard a.count == b.count else { return .badSignature }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        guard diff == 0 else { return .badSignature }
        return Double(expires) < now.timeIntervalSince1970 ? .expired : .valid
    }
}
