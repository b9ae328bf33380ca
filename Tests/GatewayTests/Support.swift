import Foundation
import KaizenTestSupport
import Testing

/// Starts a server, runs `body` with an admin client of its `default` workspace, stops it.
func withServer<T: Sendable>(
    configure: (inout KaizenServer.KaizenConfiguration) -> Void = { _ in },
    _ body: (TestServer, APIClient) async throws -> T
) async throws -> T {
    let server = try await TestServer.start(configure: configure)
    do {
        let result = try await body(server, APIClient(baseURL: server.baseURL, token: server.adminToken))
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Mints a token in `workspace` through the API and returns a client using it.
func mint(
    _ admin: APIClient, workspace: String = "default", tokenClass: String = "workspace", role: String,
    user: String? = nil, ttl: Int? = nil
) async throws -> APIClient {
    var body: [String: Any] = ["name": "\(role) token", "class": tokenClass, "role": role]
    if let user { body["user"] = ["email": user] }
    if let ttl { body["ttlSeconds"] = ttl }
    let reply = try await admin.post("/v1/workspaces/\(workspace)/tokens", json: body)
    #expect(reply.status == 201, "minting failed: \(reply.text)")
    let secret = try #require(reply.object["secret"] as? String)
    return admin.with(token: secret)
}

/// Runs a command, returning its exit status and stdout.
func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let error = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
}

import KaizenServer
