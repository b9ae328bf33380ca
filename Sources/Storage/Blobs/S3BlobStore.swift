import AsyncHTTPClient
import Crypto
import Domains
import Foundation
import NIOCore
import NIOHTTP1
import Tenancy

/// Where an S3-compatible store is and how to sign for it.
public struct S3Configuration: Sendable, Equatable {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000` (MinIO, moto …).
    public var endpoint: String
    public var bucket: String
    public var region: String
    public var credentials: SigV4Presigner.Credentials
    /// Key prefix of every blob, e.g. `kaizen/blobs/`.
    public var prefix: String
    /// `endpoint/bucket/key` (MinIO and most self-hosted stores) instead of `bucket.endpoint/key`.
    public var pathStyle: Bool

    public init(
        endpoint: String, bucket: String, region: String, credentials: SigV4Presigner.Credentials,
        prefix: String = "blobs/", pathStyle: Bool = true
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.credentials = credentials
        self.prefix = prefix
        self.pathStyle = pathStyle
    }
}

/// Content-addressed blobs in an S3-compatible bucket: `<prefix><sha256>`.
///
/// Clients upload straight to the store with a presigned PUT whose signed headers include
/// `x-amz-checksum-sha256`, so the store refuses a body whose digest differs from the declared one and
/// a client cannot change the header without breaking the signature. Finalize confirms each blob
/// with a presigned HEAD (size, and the stored checksum where the store reports one).
public struct S3BlobStore: BlobStore {
    public let configuration: S3Configuration
    let presigner: SigV4Presigner
    let scheme: String
    let authority: String
    let http: HTTPClient

    public init(_ configuration: S3Configuration, http: HTTPClient = .shared) throws {
        guard let url = URL(string: configuration.endpoint), let scheme = url.scheme, let host = url.host,
            scheme == "http" || scheme == "https"
        else {
            throw StorageError.configuration("KAIZEN_S3_ENDPOINT must be an http(s) URL, got '\(configuration.endpoint)'")
        }
        guard !configuration.bucket.isEmpty else { throw StorageError.configuration("KAIZEN_S3_BUCKET is required") }
        self.configuration = configuration
        self.presigner = SigV4Presigner(credentials: configuration.credentials, region: configuration.region)
        self.scheme = scheme
        self.authority = url.port.map { "\(host):\($0)" } ?? host
        self.http = http
    }

    /// Host and unencoded path of an object (or of the bucket when `key` is nil).
    func location(key: String?) -> (host: String, path: String) {
        if configuration.pathStyle {
            return (authority, "/\(configuration.bucket)" + (key.map { "/\($0)" } ?? ""))
        }
        return ("\(configuration.bucket).\(authority)", "/" + (key ?? ""))
    }

    public func key(_ sha256: String) -> String { configuration.prefix + sha256 }

    func presign(_ method: String, key: String?, headers: [(String, String)] = [], query: [(String, String)] = [],
                 expiresSeconds: Int, now: Date) -> String {
        let (host, path) = location(key: key)
        return presigner.presign(
            .init(method: method, scheme: scheme, host: host, path: path, query: query, headers: headers),
            date: now, expiresSeconds: expiresSeconds
        ).url
    }

    /// The base64 SHA-256 S3 expects in `x-amz-checksum-sha256`, from the hex digest declared at init.
    public static func base64Checksum(hexSHA256: String) -> String? {
        let utf8 = Array(hexSHA256.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let byte = UInt8(String(decoding: utf8[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
            i += 2
        }
        return Data(bytes).base64EncodedString()
    }

    /// A presigned PUT and the headers the client must send with it exactly.
    public func presignedPut(sha256: String, contentType: String, expiresSeconds: Int, now: Date = Date())
        -> (url: String, headers: [String: String])
    {
        let checksum = Self.base64Checksum(hexSHA256: sha256) ?? ""
        let headers = [("Content-Type", contentType), ("x-amz-checksum-sha256", checksum)]
        let url = presign("PUT", key: key(sha256), headers: headers, expiresSeconds: expiresSeconds, now: now)
        return (url, Dictionary(headers, uniquingKeysWith: { a, _ in a }))
    }

    /// A presigned GET that downloads the blob under a readable file name.
    public func presignedGet(sha256: String, filename: String?, expiresSeconds: Int, now: Date = Date()) -> String {
        var query: [(String, String)] = []
        if let filename {
            let safe = filename.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline }
            query.append(("response-content-disposition", "attachment; filename=\"\(safe)\""))
        }
        return presign("GET", key: key(sha256), query: query, expiresSeconds: expiresSeconds, now: now)
    }

    public struct StoredObject: Sendable, Equatable {
        public let size: Int64
        /// Hex SHA-256 from the store's `x-amz-checksum-sha256`, when it keeps one.
        public let sha256: String?
    }

    /// Size and checksum of a stored blob, or nil when the store has no such object.
    public func head(sha256: String, timeout: TimeAmount = .seconds(10)) async throws -> StoredObject? {
        let headers = [("x-amz-checksum-mode", "ENABLED")]
        var request = HTTPClientRequest(
            url: presign("HEAD", key: key(sha256), headers: headers, expiresSeconds: 60, now: Date()))
        request.method = .HEAD
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            // Not the endpoint nor the client's error text: both name the operator's network.
            throw DomainError.blobStoreUnavailable("the S3 store did not answer")
        }
        switch response.status.code {
        case 200:
            let size = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? -1
            let checksum = response.headers.first(name: "x-amz-checksum-sha256").flatMap {
                Data(base64Encoded: $0).map { Hex.string($0) }
            }
            return StoredObject(size: size, sha256: checksum)
        case 404:
            return nil
        default:
            throw DomainError.blobStoreUnavailable(
                "the S3 store answered HEAD \(key(sha256)) with \(response.status.code); check the credentials and bucket")
        }
    }

    /// Fails start-up with a clear message when the bucket is missing or the credentials are refused.
    public func checkBucket(timeout: TimeAmount = .seconds(10)) async throws {
        var request = HTTPClientRequest(url: presign("HEAD", key: nil, expiresSeconds: 60, now: Date()))
        request.method = .HEAD
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw StorageError.configuration("the S3 store at \(configuration.endpoint) did not answer: \(error)")
        }
        guard response.status == .ok else {
            throw StorageError.configuration(
                "bucket '\(configuration.bucket)' at \(configuration.endpoint) answered HEAD with \(response.status.code) (missing bucket or refused credentials)")
        }
    }

    /// Creates the bucket (operators and tests of a fresh store).
    public func createBucket(timeout: TimeAmount = .seconds(10)) async throws {
        var request = HTTPClientRequest(url: presign("PUT", key: nil, expiresSeconds: 60, now: Date()))
        request.method = .PUT
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok || response.status == .conflict else {
            throw StorageError.configuration("creating bucket '\(configuration.bucket)' answered \(response.status.code)")
        }
    }

    // MARK: BlobStore

    public var receivesUploads: Bool { false }

    public func uploadTarget(for attachment: DeclaredAttachment, expiresSeconds: Int) -> UploadTarget {
        let (url, headers) = presignedPut(
            sha256: attachment.sha256, contentType: attachment.contentType, expiresSeconds: expiresSeconds)
        return .direct(url: url, headers: headers)
    }

    public func receive<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, sha256: String, size: Int64) async throws
    where Chunks.Element == ArraySlice<UInt8> {
        throw DomainError.notFound("this server keeps attachments in S3: PUT them to the presigned URL init returned")
    }

    /// Confirms each blob with a HEAD (size and, where the store keeps it, checksum), at most 16 at a time:
    /// a run may declare thousands of attachments.
    public func confirm(_ attachments: [DeclaredAttachment]) async throws -> [DeclaredAttachment] {
        try await withThrowingTaskGroup(of: DeclaredAttachment?.self) { group in
            var found: [DeclaredAttachment] = []
            var pending = attachments.makeIterator()
            func next() -> Bool {
                guard let item = pending.next() else { return false }
                group.addTask {
                    guard let object = try await head(sha256: item.sha256), object.size == item.size,
                        object.sha256 == nil || object.sha256 == item.sha256
                    else { return nil }
                    return item
                }
                return true
            }
            for _ in 0..<16 where !next() { break }
            while let result = try await group.next() {
                if let result { found.append(result) }
                _ = next()
            }
            return found
        }
    }

    public func download(_ attachment: DeclaredAttachment, expiresSeconds: Int) async throws -> BlobDownload? {
        .redirect(url: presignedGet(sha256: attachment.sha256, filename: attachment.id, expiresSeconds: expiresSeconds))
    }
}
