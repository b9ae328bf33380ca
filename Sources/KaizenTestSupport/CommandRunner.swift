import ChildProcess

/// Runs a command (looked up on PATH, or an absolute path) to completion on a GCD thread — never
/// blocking the cooperative pool the server under test needs — and returns its exit status, stdout
/// and stderr. `environment` is added to this process's own.
public func runCommand(_ arguments: [String], environment: [String: String] = [:]) async throws
    -> (status: Int32, output: String, error: String)
{
    let result = try await ChildProcess.runDetached(arguments, environment: environment)
    return (result.status, result.stdout, result.stderr)
}
