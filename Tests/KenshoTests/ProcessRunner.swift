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
