import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP2
import NIOTLS
import ServiceLifecycle
import Synchronization

/// Serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one plaintext port, as nginx and Envoy do:
/// the first bytes of a connection are compared with the HTTP/2 connection preface
/// (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, RFC 9113 §3.4) and the pipeline is configured accordingly.
///
/// It reuses NIO's typed protocol-negotiation handler, the one ALPN drives after a TLS handshake:
/// the sniffer reports its verdict as if ALPN had negotiated `h2` (or nothing, meaning HTTP/1.1),
/// so both branches are Hummingbird's own HTTP1Channel and HTTP2Channel.
public struct HTTPVersionSniffingChannel: HTTPChannelHandler {
    public struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<NIONegotiatedHTTPVersion<HTTP1Channel.Value, HTTP2Channel.Value>>
        public let channel: any Channel
    }

    let http1: HTTP1Channel
    let http2: HTTP2Channel

    public var responder: Responder { http1.responder }

    /// Closes a connection that has not sent enough bytes to tell its protocol within this time.
    let firstBytesTimeout: TimeAmount?

    /// - Parameters:
    ///   - http1: HTTP/1.1 connections; its `idleTimeout` closes a connection with no request in
    ///     flight, which also bounds how long a request head may take to arrive.
    ///   - firstBytesTimeout: how long a new connection may stay silent before it is closed.
    public init(
        configuration: HTTP2ChannelConfiguration, http1: HTTP1Channel.Configuration? = nil,
        firstBytesTimeout: TimeAmount? = .seconds(10), responder: @escaping Responder
    ) {
        self.http1 = HTTP1Channel(responder: responder, configuration: http1 ?? configuration.streamConfiguration)
        self.http2 = HTTP2Channel(responder: responder, configuration: configuration)
        self.firstBytesTimeout = firstBytesTimeout
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let http1 = self.http1
        let http2 = self.http2
        let firstBytesTimeout = self.firstBytesTimeout
        return channel.eventLoop.makeCompletedFuture {
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<
                NIONegotiatedHTTPVersion<HTTP1Channel.Value, HTTP2Channel.Value>
            > { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                default:
                    return http1.setup(channel: channel, logger: logger).map { .http1_1($0) }
                }
            }
            try channel.pipeline.syncOperations.addHandler(HTTPPrefaceSniffer(timeout: firstBytesTimeout))
            try channel.pipeline.syncOperations.addHandler(negotiation)
            return Value(negotiated: negotiation.protocolNegotiationResult, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            // A connection that has not sent its first bytes has no request in flight: on graceful
            // shutdown or cancellation close it, or waiting for its verdict would hold the server up
            // (clients such as AsyncHTTPClient park unused connections in their pools).
            let settled = Settled()
            value.negotiated.whenComplete { _ in settled.flag.store(true, ordering: .relaxed) }
            let negotiated = try await withTaskCancellationHandler {
                try await withGracefulShutdownHandler {
                    try await value.negotiated.get()
                } onGracefulShutdown: {
                    // On the channel's loop, where the verdict also lands: no race with it.
                    value.channel.eventLoop.execute {
                        if !settled.flag.load(ordering: .relaxed) { value.channel.close(promise: nil) }
                    }
                }
            } onCancel: {
                value.channel.close(promise: nil)
            }
            switch negotiated {
            case .http1_1(let connection): await http1.handle(value: connection, logger: logger)
            case .http2(let connection): await http2.handle(value: connection, logger: logger)
            }
        } catch {
            logger.debug("connection closed before its protocol was known: \(error)")
        }
    }

}

/// Buffers the first bytes until they match or diverge from the HTTP/2 preface, then announces
/// the protocol with a `TLSUserEvent.handshakeCompleted` event, replays the bytes and removes itself.
final class HTTPPrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private var buffered: ByteBuffer?
    private let timeout: TimeAmount?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount?) { self.timeout = timeout }

    // A connection that never sends its first bytes would otherwise stay open forever: neither
    // protocol's own idle timer runs before the protocol is known.
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        guard let timeout, timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var existing = buffered {
            existing.writeBuffer(&incoming)
            buffer = existing
        } else {
            buffer = incoming
        }
        let view = buffer.readableBytesView
        let count = min(view.count, Self.preface.count)
        let matches = view.prefix(count).elementsEqual(Self.preface.prefix(count))
        if matches && count < Self.preface.count {
            buffered = buffer  // not enough bytes yet to decide
            return
        }
        buffered = nil
        timer?.cancel()
        timer = nil
        context.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: matches ? "h2" : nil))
        context.fireChannelRead(wrapInboundOut(buffer))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Set once a connection's protocol is known.
final class Settled: Sendable {
    let flag = Atomic<Bool>(false)
}
