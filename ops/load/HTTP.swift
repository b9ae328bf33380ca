import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

struct Reply: Sendable {
    let status: Int
    let version: HTTPVersion
    let body: Data
    let headers: HTTPHeaders
    let micros: UInt64

    var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var array: [Any] { (try? JSONSerialization.jsonObject(with: body)) as? [Any] ?? [] }
    var text: String { String(decoding: body.prefix(400), as: UTF8.self) }
}

/// One caller of the API: a base URL, a bearer token and a client.
struct Caller: Sendable {
    let client: HTTPClient
    let base: String
    let token: String?

    func send(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json",
        headers extra: [String: String] = [:], absolute: Bool = false
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: absolute ? path : base + path)
        request.method = method
        if let token, !absolute { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        for (name, value) in extra { request.headers.replaceOrAdd(name: name, value: value) }
        let started = DispatchTime.now().uptimeNanoseconds
        let response = try await client.execute(request, timeout: .seconds(600))
        let collected = try await response.body.collect(upTo: 256 << 20)
        let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        return Reply(status: Int(response.status.code), version: response.version, body: Data(buffer: collected),
                     headers: response.headers, micros: micros)
    }

    func get(_ path: String) async throws -> Reply { try await send(.GET, path) }
    func post(_ path: String, json: Any) async throws -> Reply {
        try await send(.POST, path, body: try JSONSerialization.data(withJSONObject: json))
    }
}
