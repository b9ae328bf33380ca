import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A minimal JSON client for tests over real sockets (HTTP/1.1).
public struct APIClient: Sendable {
    public let baseURL: String
    public let token: String?

    public init(baseURL: String, token: String?) {
        self.baseURL = baseURL
        self.token = token
    }

    public struct Reply: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: Data

        public init(status: Int, headers: HTTPHeaders, body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// The body as a JSON object or array (`[String: Any]` / `[Any]`).
        public var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
        public var object: [String: Any] { json as? [String: Any] ?? [:] }
        public var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
        public var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
        public var errorMessage: String? { (object["error"] as? [String: Any])?["message"] as? String }
        public var errorDetails: [String: Any]? { (object["error"] as? [String: Any])?["details"] as? [String: Any] }
        /// The pointers of a 422's `details.errors`.
        public var errorPointers: [String] {
            ((errorDetails?["errors"] as? [[String: Any]]) ?? []).compactMap { $0["pointer"] as? String }
        }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public func with(token: String?) -> APIClient { APIClient(baseURL: baseURL, token: token) }

    public func get(_ path: String) async throws -> Reply { try await send(.GET, path) }
    public func delete(_ path: String) async throws -> Reply { try await send(.DELETE, path) }
    public func post(_ path: String, json: Any, timeout: TimeAmount = testRequestTimeout) async throws -> Reply {
        try await send(.POST, path, body: try JSONSerialization.data(withJSONObject: json), timeout: timeout)
    }
    public func post(_ path: String, raw: Data, contentType: String = "application/json") async throws -> Reply {
        try await send(.POST, path, body: raw, contentType: contentType)
    }

    public func put(_ path: String, json: Any) async throws -> Reply {
        try await send(.PUT, path, body: try JSONSerialization.data(withJSONObject: json))
    }
    public func patch(_ path: String, json: Any) async throws -> Reply {
        try await send(.PATCH, path, body: try JSONSerialization.data(withJSONObject: json))
    }

    public func put(_ path: String, raw: Data, contentType: String = "application/octet-stream") async throws -> Reply {
        try await send(.PUT, path, body: raw, contentType: contentType)
    }

    public func send(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json",
        headers extra: [(String, String)] = [], timeout: TimeAmount = testRequestTimeout
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            if !contentType.isEmpty { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await testHTTPClient.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
    }
}

/// How long a test request may take. Generous: the suite runs many servers at once on loaded CI machines,
/// where a stress run saw requests wait past 30 s; a hung server still fails the test.
public let testRequestTimeout: TimeAmount = .seconds(300)

/// The tests' HTTP client: only `testRequestTimeout` bounds a request. The shared client also gives up after 90 s
/// without a byte, and a 50,000-case finalize (which answers once it is done) took longer than that while the
/// whole suite shared two cores. (Never shut down: it lives as long as the test process.)
public let testHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration.singletonConfiguration
    configuration.timeout = .init(connect: .seconds(90), read: testRequestTimeout)
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

/// How long a test waits for a condition to hold (roll-ups done, a node up, a server healthy). Generous for
/// loaded CI machines: each wait ends as soon as its condition holds, so a fast machine never waits.
public let testConditionTimeout: Double = 300

/// A condition that did not hold within its deadline.
public struct ConditionTimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Waits until `condition` holds, asking every 100 ms, for `seconds` at most; throws `ConditionTimedOut`
/// then. A condition that throws (a server not listening yet) counts as not holding yet.
public func waitUntil(_ what: String, seconds: Double = testConditionTimeout, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw ConditionTimedOut(description: "timed out after \(seconds) s waiting until \(what)")
}

/// How long the tests' own database pools wait for a connection (the server's default, 5 s, is for
/// prompt 503s; dozens of test servers share two cores here).
public let testAcquireTimeout: Duration = .seconds(30)
