import Crypto
import Foundation

/// Content-addressed attachment storage on the local filesystem: `<root>/ab/cd/<sha256>`.
/// A blob is written to a temporary file while being hashed and only renamed into place when
/// its size and sha256 match what was declared, so a bad upload stores nothing.
///
/// Owner-only: the root is 0700 (also when an older Kaizen left it wider, which alone keeps every
/// blob below it out of other local accounts' reach), directories 0700, files 0600.
public struct FileBlobStore: Sendable {
    public let root: String
    static var directoryMode: [FileAttributeKey: Any] { [.posixPermissions: 0o700] }

    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(
            atPath: root + "/tmp", withIntermediateDirectories: true, attributes: Self.directoryMode)
        try FileManager.default.setAttributes(Self.directoryMode, ofItemAtPath: root)
        try FileManager.default.setAttributes(Self.directoryMode, ofItemAtPath: root + "/tmp")
    }

    public func path(_ sha256: String) -> String {
        let chars = Array(sha256)
        guard chars.count >= 4 else { return "\(root)/invalid/\(sha256)" }
        return "\(root)/\(String(chars[0..<2]))/\(String(chars[2..<4]))/\(sha256)"
    }

    public func exists(_ sha256: String) -> Bool {
        FileManager.default.fileExists(atPath: path(sha256))
    }

    public enum WriteError: Error, Equatable {
        case tooLarge(declared: Int64)
        case sizeMismatch(declared: Int64, received: Int64)
        case digestMismatch(declared: String, received: String)
    }

    /// Streams `chunks` to disk, verifying size and digest.
    public func write<S: AsyncSequence>(_ chunks: S, sha256: String, size: Int64) async throws
    where S.Element == [UInt8] {
        let temp = "\(root)/tmp/\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temp, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temp))
        var hasher = SHA256()
        var received: Int64 = 0
        do {
            for try await chunk in chunks {
                received += Int64(chunk.count)
                if received > size { throw WriteError.tooLarge(declared: size) }
                hasher.update(data: chunk)
                try handle.write(contentsOf: chunk)
            }
            try handle.close()
            if received != size { throw WriteError.sizeMismatch(declared: size, received: received) }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            if digest != sha256 { throw WriteError.digestMismatch(declared: sha256, received: digest) }
            let final = path(sha256)
            try FileManager.default.createDirectory(
                atPath: (final as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: Self.directoryMode)
            if FileManager.default.fileExists(atPath: final) {
                try FileManager.default.removeItem(atPath: temp)
            } else {
                try FileManager.default.moveItem(atPath: temp, toPath: final)
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
    }
}
