import Domains
import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import Storage
import Testing

@testable import Gateway

@Suite struct ErrorMappingTests {
    struct SecretBug: Error, CustomStringConvertible {
        var description: String { "password=hunter2 at /srv/internal.swift:42" }
    }

    @Test func unexpectedErrorsAre500WithoutInternals() throws {
        let error = ErrorMapping.apiError(for: SecretBug(), method: "GET", path: "/v1/x")
        #expect(error.status == 500)
        #expect(error.code == "internal")
        let response = ErrorMapping.response(for: error)
        #expect(response.status.code == 500)
        #expect(!error.message.contains("hunter2"))
    }

    /// The runtime's error describes the whole request; what is logged must not carry the token.
    @Test func loggedServerErrorsOmitRequestHeaders() {
        var request = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/ingest/kensho/finalize")
        request.headerFields[.authorization] = "Bearer krt_verysecrettokenvalue"
        let error = ServerError(
            operationID: "finalizeKenshoIngest", request: request, requestBody: nil, requestMetadata: .init(),
            causeDescription: "User handler threw an error.", underlyingError: SecretBug())
        #expect(String(reflecting: error).contains("krt_verysecrettokenvalue"))  // why this test exists
        let logged = ErrorMapping.logDescription(error)
        #expect(!logged.contains("krt_"))
        #expect(logged.contains("finalizeKenshoIngest"))
        #expect(logged.contains("password=hunter2"))  // the underlying error is what operators need
    }

    @Test func domainFailuresMapToTheirStatuses() {
        let down = ErrorMapping.apiError(for: DomainError.shardUnavailable(server: 1), method: "GET", path: "/v1/projects")
        #expect(down.status == 503)
        #expect(down.retryAfter != nil)
        #expect(down.details["server"] == .int(1))
        #expect(!down.message.contains("h:5432") && down.details["address"] == nil)
        let duplicate = ErrorMapping.apiError(
            for: DomainError.uniqueViolation(constraint: "projects_slug_key"), method: "POST", path: "/v1/projects")
        #expect(duplicate.status == 409)
        let misconfigured = ErrorMapping.apiError(
            for: StorageError.configuration("secret detail"), method: "GET", path: "/")
        #expect(misconfigured.status == 500)
        #expect(!misconfigured.message.contains("secret"))
    }

    @Test func decodingErrorsPointAtTheField() {
        struct Body: Decodable {
            struct Inner: Decodable { let email: String }
            let name: String
            let user: Inner
        }
        func map(_ json: String) -> HTTPFailure {
            do {
                _ = try JSONDecoder().decode(Body.self, from: Data(json.utf8))
                return HTTPFailure(.internalError)
            } catch {
                return ErrorMapping.apiError(for: error, method: "POST", path: "/")
            }
        }
        #expect(map("{").status == 400)
        #expect(map("{").code == "malformed_json")
        let missing = map(#"{"name":"x","user":{}}"#)
        #expect(missing.status == 422)
        #expect(missing.details["errors"] == [["pointer": "/user/email", "message": "is required"]])
        let wrongType = map(#"{"name":1,"user":{"email":"a"}}"#)
        #expect(wrongType.details["errors"] == [["pointer": "/name", "message": "must be a string"]])
    }
}
