import Domains
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Where the request being handled came from: the client's address and the request's id, for the audit
/// log and sign-in throttling. Set by `RequestOriginMiddleware` around everything else.
public struct RequestOrigin: Sendable {
    /// Kept as the socket address: turning it into text costs an allocation, made only when asked.
    let address: SocketAddress?
    public let requestID: String

    public var clientAddress: String? { address?.ipAddress }

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
        let id = request.headers[.requestID].flatMap { Self.acceptable($0) ? $0 : nil } ?? RequestIDs.next()
        let address = (context as? any RemoteAddressRequestContext)?.remoteAddress
        var response = try await RequestOrigin.$current.withValue(RequestOrigin(address: address, requestID: id)) {
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

/// Request ids: this process's random prefix and a counter — unique across nodes and restarts in
/// practice, and one small string per request (a ULID cost a dozen allocations on every request).
enum RequestIDs {
    static let prefix: String = {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        return "req_" + String(decoding: (0..<10).map { _ in alphabet[Int(rng.next() % 36)] }, as: UTF8.self) + "_"
    }()
    static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + String(n, radix: 36)
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let csrfToken = Self("X-CSRF-Token")!
}
