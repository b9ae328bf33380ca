import Foundation

/// Runs a program to completion on a GCD thread (never blocking the cooperative pool the server
/// under test needs); stdout and stderr go to one file, read afterwards.
func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                if let environment { process.environment = environment }
                if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
                let log = NSTemporaryDirectory() + "kensho-test-\(UUID().uuidString).log"
                FileManager.default.createFile(atPath: log, contents: nil)
                defer { try? FileManager.default.removeItem(atPath: log) }
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
                process.standardOutput = handle
                process.standardError = handle
                try process.run()
                process.waitUntilExit()
                try handle.close()
                return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            })
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A TCP port on 127.0.0.1 that nothing listens on right now.
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
