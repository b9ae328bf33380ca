import Domains

/// Where a client sends an attachment's bytes.
public enum UploadTarget: Sendable, Equatable {
    /// To Kaizen's own upload endpoint (the gateway signs that URL).
    case kaizen
    /// Straight to the store: a presigned PUT with these headers.
    case direct(url: String, headers: [String: String])
}

/// How a stored attachment reaches a client.
public enum BlobDownload: Sendable {
    /// The store serves it: send the client there.
    case redirect(url: String)
    /// The bytes, read as the client consumes them (memory stays flat for large files).
    case stream(BlobChunks, length: Int64)
}

public typealias BlobChunks = AsyncThrowingStream<ArraySlice<UInt8>, any Error>

/// Content-addressed attachment bytes: the local filesystem or an S3-compatible bucket. Callers never
/// ask which; each store answers the questions in its own way.
public protocol BlobStore: Sendable {
    /// Whether clients send bytes to Kaizen's own upload endpoint (else straight to the store).
    var receivesUploads: Bool { get }
    /// Where a client uploads `attachment`.
    func uploadTarget(for attachment: DeclaredAttachment, expiresSeconds: Int) -> UploadTarget
    /// Stores bytes sent to Kaizen's upload endpoint, verifying size and digest, so a bad upload stores nothing.
    /// Throws `notFound` when this store takes uploads directly, `payloadTooLarge` and `validation` for bad bodies.
    func receive<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, sha256: String, size: Int64) async throws
    where Chunks.Element == ArraySlice<UInt8>
    /// Of `attachments`, those whose bytes the store holds (with the declared size, and digest where it can tell).
    func confirm(_ attachments: [DeclaredAttachment]) async throws -> [DeclaredAttachment]
    /// Nil when the bytes are gone.
    func download(_ attachment: DeclaredAttachment, expiresSeconds: Int) async throws -> BlobDownload?
}
