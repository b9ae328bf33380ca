import Crypto
import Domains
import Foundation
import NIOCore
import NIOFileSystem
import Tenancy

/// Content-addressed attachment storage on the local filesystem: `<root>/ab/cd/<sha256>`.
/// A blob is written to a temporary file while being hashed and only renamed into place when
/// its size and sha256 match what was declared, so a bad upload stores nothing. All file I/O on
/// the request path goes through NIO's file system (its own thread pool), never blocking the
/// cooperative pool.
///
/// Owner-only: the root is 0700 (also when an older Kaizen left it wider, which alone keeps every
/// blob below it out of other local accounts' reach), directories 0700, files 0600.
public struct FileBlobStore: BlobStore {
    public let root: String
    static var directoryMode: [FileAttributeKey: Any] { [.posixPermissions: 0o700] }
    static let directoryPermissions: FilePermissions = [.ownerReadWriteExecute]
    static let chunkLength = ByteCount.kibibytes(64)

    /// Creates the root at start-up (synchronously: no request is being served yet).
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

    /// The size of a stored blob, or nil.
    func storedSize(_ sha256: String) async throws -> Int64? {
        guard let info = try await FileSystem.shared.info(forFileAt: FilePath(path(sha256))) else { return nil }
        return info.size
    }

    // MARK: BlobStore

    public var receivesUploads: Bool { true }

    public func uploadTarget(for attachment: DeclaredAttachment, expiresSeconds: Int) -> UploadTarget { .kaizen }

    public func confirm(_ attachments: [DeclaredAttachment]) async throws -> [DeclaredAttachment] {
        var found: [DeclaredAttachment] = []
        for item in attachments where try await storedSize(item.sha256) == item.size { found.append(item) }
        return found
    }

    public func download(_ attachment: DeclaredAttachment, expiresSeconds: Int) async throws -> BlobDownload? {
        guard let size = try await storedSize(attachment.sha256) else { return nil }
        let reader = FileChunkReader(path: FilePath(path(attachment.sha256)), chunkLength: Self.chunkLength)
        // Pulled as the client consumes the response: back-pressure, and memory stays flat for large files.
        return .stream(BlobChunks(unfolding: { try await reader.next() }), length: size)
    }

    /// Streams `chunks` to a temporary file, verifying size and digest, then moves it into place.
    public func receive<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, sha256: String, size: Int64) async throws
    where Chunks.Element == ArraySlice<UInt8> {
        let fs = FileSystem.shared
        let temp = FilePath("\(root)/tmp/\(UUID().uuidString)")
        do {
            let digest = try await fs.withFileHandle(
                forWritingAt: temp, options: .newFile(replaceExisting: false, permissions: [.ownerReadWrite])
            ) { handle in
                var hasher = SHA256()
                var received: Int64 = 0
                for try await chunk in chunks {
                    received += Int64(chunk.count)
                    if received > size { throw DomainError.payloadTooLarge(limit: Int(clamping: size)) }
                    hasher.update(data: chunk)
                    _ = try await handle.write(contentsOf: chunk, toAbsoluteOffset: received - Int64(chunk.count))
                }
                if received != size {
                    throw DomainError.validation(pointer: "", "the body has \(received) bytes but \(size) were declared at init")
                }
                return Hex.string(hasher.finalize())
            }
            if digest != sha256 {
                throw DomainError.validation(pointer: "", "the body's sha256 is \(digest) but \(sha256) was declared at init")
            }
            let final = FilePath(path(sha256))
            try await fs.createDirectory(
                at: final.removingLastComponent(), withIntermediateDirectories: true,
                permissions: Self.directoryPermissions)
            if try await fs.info(forFileAt: final) != nil {
                try await fs.removeItem(at: temp)
            } else {
                try await fs.moveItem(at: temp, to: final)
            }
        } catch {
            _ = try? await fs.removeItem(at: temp)
            throw error
        }
    }
}

/// Reads a file chunk by chunk on demand. The handle opens on the first read and closes at the end; a
/// reader dropped early (the client went away) closes it in `deinit`.
actor FileChunkReader {
    let path: FilePath
    let chunkLength: ByteCount
    private var handle: ReadFileHandle?
    private var offset: Int64 = 0
    private var finished = false

    init(path: FilePath, chunkLength: ByteCount) {
        self.path = path
        self.chunkLength = chunkLength
    }

    func next() async throws -> ArraySlice<UInt8>? {
        if finished { return nil }
        let handle: ReadFileHandle
        if let open = self.handle {
            handle = open
        } else {
            handle = try await FileSystem.shared.openFile(forReadingAt: path)
            self.handle = handle
        }
        let chunk = try await handle.readChunk(fromAbsoluteOffset: offset, length: chunkLength)
        if chunk.readableBytes == 0 {
            finished = true
            self.handle = nil
            try await handle.close()
            return nil
        }
        offset += Int64(chunk.readableBytes)
        return ArraySlice(chunk.readableBytesView)
    }

    deinit {
        // NIO's handles must be closed explicitly; closing a descriptor is a quick system call.
        if let handle, let descriptor = try? handle.detachUnsafeFileDescriptor() { try? descriptor.close() }
    }
}
