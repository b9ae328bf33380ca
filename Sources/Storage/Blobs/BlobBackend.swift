/// Where attachment bytes live: the local filesystem (default) or an S3-compatible bucket.
public enum BlobBackend: Sendable {
    case filesystem(FileBlobStore)
    case s3(S3BlobStore)
}
