import Domains

/// Upload sessions and which attachment blobs a workspace has stored.
public protocol UploadRepository: Sendable {
    /// Which of `shas` the workspace has recorded as stored.
    func existingBlobs(_ shas: [String]) async throws -> Set<String>
    func recordBlob(sha256: String, size: Int64, contentType: String) async throws
    func createUploadSession(_ session: UploadSession) async throws
    func uploadSession(id: String) async throws -> UploadSession?
}
