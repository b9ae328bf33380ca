import Domains
import HTTPTypes
import Hummingbird

/// Where the request being handled came from: the client's address and the request's id, for the audit
/// log and sign-in throttling. Set by `RequestOriginMiddleware` around everything else.
public struct RequestOrigin: Sendable {
    public let clientAddress: String?
    public let requestID: String

    @TaskLocal public static var current: RequestOrigin?

    /// Who is acting, for the audit log: the person when there is one, else the token.
    static func actor(_ identity: Identity) -> AuditActor {
        AuditActor(
            type: identity.userID == nil ? "token" : "user", id: identity.userID ?? identity.tokenID,
            clientAddress: current?.clientAddress, requestID: current?.requestID)
    }
}

/// Gives every request an id (the client's `X-Request-Id` when it is a short token of safe characters,
/// else a new one), answers it in `X-Request-Id`, and notes the peer's address.
struct RequestOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let id = request.headers[.requestID].flatMap { Self.acceptable($0) ? $0 : nil } ?? ResourceID.make(.event).replacingOccurrences(of: "evt_", with: "req_")
        let address = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
        var response = try await RequestOrigin.$current.withValue(RequestOrigin(clientAddress: address, requestID: id)) {
            try await next(request, context)
        }
        response.headers[.requestID] = id
        return response
    }

    static func acceptable(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 64
            && value.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 || c == 46
            }
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let csrfToken = Self("X-CSRF-Token")!
}
