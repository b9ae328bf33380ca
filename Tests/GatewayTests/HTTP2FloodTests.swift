import Foundation
import KaizenTestSupport
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization
import Testing

/// Issue 11 §5: an HTTP/2 client that opens streams and resets them at once (CVE-2023-44487,
/// "rapid reset") is cut off, and the server keeps answering everyone else meanwhile.
@Suite struct HTTP2FloodTests {
    /// Counts what the server sends back on the flooding connection.
    final class Watcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTP2Frame
        let goAway = Atomic<Bool>(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .goAway = unwrapInboundIn(data).payload { goAway.store(true, ordering: .relaxed) }
        }
    }

    @Test func aRapidResetFloodIsCutOffAndOthersAreServed() async throws {
        try await withServer { server, admin in
            let watcher = Watcher()
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: server.port)
                .flatMap { channel in
                    channel.pipeline.addHandlers([NIOHTTP2Handler(mode: .client), watcher]).map { channel }
                }.get()
            let headers = HPACKHeaders([
                (":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", "/version"),
            ])
            // Others keep being served while the flood runs.
            let bystander = Task {
                var statuses: [Int] = []
                for _ in 0..<40 { statuses.append(try await admin.get("/v1/projects").status) }
                return statuses
            }
            var sent = 0
            var stream = 1
            while sent < 20_000, channel.isActive {
                for _ in 0..<100 {
                    let id = HTTP2StreamID(stream)
                    channel.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: true))), promise: nil)
                    channel.write(HTTP2Frame(streamID: id, payload: .rstStream(.cancel)), promise: nil)
                    stream += 2
                    sent += 1
                }
                try? await channel.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .ping(.init(), ack: false))).get()
            }
            // The server ends the connection long before the flood does.
            let closed = await withTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await channel.closeFuture.get()) != nil }
                group.addTask {
                    try? await Task.sleep(for: .seconds(30))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(closed, "the server kept a rapid-reset connection open")
            #expect(sent < 20_000, "the server took \(sent) reset streams without closing the connection")
            let sawGoAway = watcher.goAway.load(ordering: .relaxed)
            #expect(sawGoAway, "no GOAWAY before closing")
            let statuses = try await bystander.value
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            print("HTTP/2 rapid reset: connection closed after \(sent) reset streams; 40 of 40 other requests answered 200")
            try? await channel.close()
        }
    }
}
