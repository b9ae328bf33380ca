import KaizenTestSupport
import Foundation

/// Runs a program to completion on a GCD thread (never blocking the cooperative pool the server
/// under test needs); stdout and stderr interleaved in one output. `environment` replaces this
/// process's own when given.
func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
) async throws -> (status: Int32, output: String) {
    // `env -i` starts from an empty environment, so the given one is the child's whole environment.
    let command = environment.map { env in ["/usr/bin/env", "-i"] + env.map { "\($0.key)=\($0.value)" } + [executable] }
        ?? [executable]
    let result = try await ChildProcess.runDetached(command + arguments, directory: directory, mergeOutput: true)
    return (result.status, result.stdout)
}

#if canImport(Glibc)
import Glibc
#endif

