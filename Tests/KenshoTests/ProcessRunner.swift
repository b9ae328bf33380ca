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
