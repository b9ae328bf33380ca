import Dispatch
import Foundation
import Synchronization

/// Runs a command (looked up on PATH, or an absolute path) to completion on a GCD thread — never
/// blocking the cooperative pool the server under test needs — and returns its exit status, stdout
/// and stderr. `environment` is added to this process's own.
public func runCommand(_ arguments: [String], environment: [String: String] = [:]) async throws
    -> (status: Int32, output: String, error: String)
{
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try runCommandBlocking(arguments, environment: environment) })
        }
    }
}

private func runCommandBlocking(_ arguments: [String], environment: [String: String]) throws
    -> (status: Int32, output: String, error: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if !environment.isEmpty {
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr concurrently so neither pipe can fill up and stall the child.
    let errData = Mutex(Data())
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        errData.withLock { $0 = data }
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: output, as: UTF8.self),
        String(decoding: errData.withLock { $0 }, as: UTF8.self)
    )
}
