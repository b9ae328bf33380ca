import HTTPTypes
import OpenAPIRuntime

/// Undoes the OpenAPI runtime's percent-encoding of the `Location` and `Set-Cookie` headers.
///
/// The runtime serializes header values as URI components (apple/swift-openapi-generator#857,
/// #529), which turns a redirect to a presigned URL into `http%3A%2F%2F…`. The encoding is exact
/// (a `%` of the original became `%25`), so decoding it once restores the URL the handler set.
struct RawLocationMiddleware: ServerMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var (response, responseBody) = try await next(request, body, metadata)
        for name in [HTTPField.Name.location, .setCookie] {
            if let value = response.headerFields[name], let decoded = value.removingPercentEncoding {
                response.headerFields[name] = decoded
            }
        }
        return (response, responseBody)
    }
}
