import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// Hashes and checks passwords. Deliberately slow, so never on the cooperative pool.
public protocol PasswordHasher: Sendable {
    func hash(_ password: String) async throws -> String
    func verify(_ password: String, hash: String) async throws -> Bool
}

/// bcrypt (hummingbird-auth) on NIO's blocking thread pool.
///
/// bcrypt reads only the first 72 bytes of its input, so the password is first reduced to the base64 of
/// its SHA-256 (44 bytes, no NUL): two long passwords that share a 72-byte prefix stay different.
public struct BcryptPasswordHasher: PasswordHasher {
    public let cost: UInt8

    public init(cost: Int) {
        self.cost = UInt8(clamping: min(max(cost, 4), 31))
    }

    static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Array(password.utf8))).base64EncodedString()
    }

    public func hash(_ password: String) async throws -> String {
        let input = Self.prehash(password)
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        let input = Self.prehash(password)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: hash) }
    }
}
