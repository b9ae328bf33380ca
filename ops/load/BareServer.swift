import Foundation
import Hummingbird
import HummingbirdHTTP2
import NIOCore

/// The read-path limit: Hummingbird with nothing of Kaizen, answering `GET /v1/runs/:id` with
/// fixed bytes over h2c, in its own process like the server under test.
enum BareServer {
    static func run(port: Int, bodyFile: String) async throws {
        let body = try Data(contentsOf: URL(fileURLWithPath: bodyFile))
        let router = Router()
        router.get("/v1/runs/:id") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        let app = Application(
            router: router, server: .plaintextHTTP2(), configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}
