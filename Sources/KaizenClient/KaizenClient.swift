// The Kaizen API client, generated at build time from the same `openapi.yaml` the server's stubs
// come from (`Sources/Gateway/openapi.yaml`; this target links to it). `Client` and the
// `Components`/`Operations` types are public; `KaizenClient.make` wires the AsyncHTTPClient transport.
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

public enum KaizenClient {
    /// A client for the server at `serverURL` sending `token` as a bearer token on every request.
    public static func make(
        serverURL: URL, token: String?, middlewares: [any ClientMiddleware] = [], httpClient: HTTPClient = .shared,
        timeout: TimeAmount = .seconds(600)
    ) -> Client {
        Client(
            serverURL: serverURL,
            configuration: .init(),
            transport: AsyncHTTPClientTransport(configuration: .init(client: httpClient, timeout: timeout)),
            middlewares: (token.map { [BearerToken(token: $0)] } ?? []) + middlewares)
    }
}

/// Adds `Authorization: Bearer …`.
struct BearerToken: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}
