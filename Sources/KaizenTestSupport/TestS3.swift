import AsyncHTTPClient
import Domains
import Foundation
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway S3-compatible server for the whole test process: moto's standalone server
/// (`pip install 'moto[server]'`, which `.ci/run` does), started on first use on a free loopback
/// port and killed when the process exits. Each caller gets its own fresh bucket.
public actor TestS3 {
    public static let shared = TestS3()

    private var startup: Task<String, any Error>?
    private var counter = 0
    /// The moto process, for the exit handler (a C function pointer: it can only reach statics).
    static let pid = Atomic<Int32>(0)

    /// The endpoint, e.g. `http://127.0.0.1:41234`.
    func endpoint() async throws -> String {
        if startup == nil { startup = Task { try await Self.launch() } }
        return try await startup!.value
    }

    /// An S3 configuration on a new, empty bucket.
    public func freshBucket() async throws -> S3Configuration {
        let endpoint = try await endpoint()
        counter += 1
        let config = S3Configuration(
            endpoint: endpoint, bucket: "kaizen-test-\(getpid())-\(counter)", region: "us-east-1",
            credentials: .init(accessKeyID: "AKIDKAIZENTEST", secretAccessKey: "kaizen-test-secret"),
            prefix: "blobs/", pathStyle: true)
        try await S3BlobStore(config).createBucket()
        return config
    }

    static func launch() async throws -> String {
        let port = try EmbeddedPostgres.freePort()
        let candidates: [[String]] = [
            ["moto_server", "-H", "127.0.0.1", "-p", "\(port)"],
            ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", "\(port)"],
        ]
        for arguments in candidates {
            guard let spawned = spawn(arguments) else { continue }
            pid.store(spawned, ordering: .relaxed)
            atexit {
                let pid = TestS3.pid.load(ordering: .relaxed)
                if pid > 0 { kill(pid, SIGTERM) }
            }
            let endpoint = "http://127.0.0.1:\(port)"
            for _ in 0..<150 {
                var probe = HTTPClientRequest(url: endpoint + "/")
                probe.method = .GET
                if (try? await HTTPClient.shared.execute(probe, timeout: .seconds(1))) != nil { return endpoint }
                if ChildProcess.exited(spawned) != nil { break }  // it died: try the next way
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(spawned, SIGKILL)
        }
        throw StorageError.embedded(
            "could not start moto's S3 server: install it with `python3 -m pip install 'moto[server]'` (.ci/run does)")
    }

    /// Starts a child with stdio on /dev/null; nil when the program cannot be run.
    static func spawn(_ arguments: [String]) -> pid_t? {
        try? ChildProcess.spawn(arguments)
    }
}
