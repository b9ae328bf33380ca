import ChildProcess
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A receiver on loopback: README's own Python program (run exactly as written there), or a scripted one.
/// Its standard output — one line per request it accepted — is read back from a file.
public struct Receiver: Sendable {
    public let pid: pid_t
    public let port: Int
    public let log: String

    public static var readmeProgram: String {
        get throws {
            // The repository's root: three levels above this file (Sources/KaizenTestSupport/Receiver.swift).
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            guard let marker = readme.range(of: "<!-- webhook-receiver -->\n```python\n"),
                let end = readme.range(of: "\n```", range: marker.upperBound..<readme.endIndex)
            else { throw ReceiverMissing() }
            return String(readme[marker.upperBound..<end.lowerBound])
        }
    }

    /// Starts `program` with `environment` and `PORT` — `port`, or a free one — and waits until it accepts
    /// connections. A port chosen beforehand lets a webhook's URL name it before the receiver has its secret.
    public static func start(_ program: String, port: Int? = nil, environment: [String: String] = [:]) async throws -> Receiver {
        let folder = NSTemporaryDirectory() + "kaizen-receiver-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(program.utf8).write(to: URL(fileURLWithPath: folder + "/receiver.py"))
        let port = port ?? freeLoopbackPort()
        var env = environment
        env["PORT"] = String(port)
        let log = folder + "/out.log"
        let pid = try ChildProcess.spawn(["python3", "-u", folder + "/receiver.py"], environment: env, stdout: log, stderr: folder + "/err.log")
        let receiver = Receiver(pid: pid, port: port, log: log)
        try await waitUntil("the receiver listens on \(port)") { receiver.listening }
        return receiver
    }

    public var listening: Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    public var url: String { "http://127.0.0.1:\(port)/hook" }

    /// The lines printed so far.
    public var lines: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// SIGKILL: a child inherits the signals its parent ignores, and the test process may ignore SIGTERM.
    public func stop() {
        kill(pid, SIGKILL)
        _ = ChildProcess.wait(pid)
    }
}

public struct ReceiverMissing: Error, CustomStringConvertible {
    public var description: String { "README.md has no webhook receiver after <!-- webhook-receiver -->" }
}
