import Hummingbird
import NIOCore

/// The server's request context: Hummingbird's basic one plus the peer's address (sign-in throttling and
/// the audit log's "from where").
public struct KaizenRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        // An HTTP/2 stream's channel answers its connection's address.
        self.remoteAddress = source.channel.remoteAddress
    }
}
