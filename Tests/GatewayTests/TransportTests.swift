import Foundation
import KaizenTestSupport
import Testing

/// Real sockets, real clients: curl speaks HTTP/1.1, HTTP/2 with prior knowledge, and TLS with ALPN.
@Suite struct TransportTests {
    /// `curl -w` reports the protocol version the connection actually used.
    func curl(_ arguments: [String]) throws -> (version: String, status: String, body: String) {
        let result = try run(["curl", "-sS", "-o", "-", "-w", "\n%{http_version} %{http_code}"] + arguments)
        #expect(result.status == 0, "curl failed: \(result.error)")
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        let meta = lines.last?.split(separator: " ") ?? []
        return (
            meta.first.map(String.init) ?? "", meta.dropFirst().first.map(String.init) ?? "",
            lines.dropLast().joined(separator: "\n")
        )
    }

    @Test func onePortServesHTTP1AndH2C() async throws {
        try await withServer { server, _ in
            let auth = ["-H", "Authorization: Bearer \(server.adminToken)"]
            let h1 = try curl(["--http1.1", "\(server.baseURL)/v1/projects"] + auth)
            #expect(h1.version == "1.1")
            #expect(h1.status == "200")
            let h2 = try curl(["--http2-prior-knowledge", "\(server.baseURL)/v1/projects"] + auth)
            #expect(h2.version == "2")
            #expect(h2.status == "200")
            #expect(h2.body == "[]")
            // Several streams on one HTTP/2 connection.
            let multi = try run(
                ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                 "-w", "%{http_version} %{http_code}\n", "\(server.baseURL)/healthz", "\(server.baseURL)/version",
                 "\(server.baseURL)/v1/openapi.json"])
            #expect(multi.output.split(separator: "\n") == ["2 200", "2 200", "2 200"])
            // Errors keep the envelope over HTTP/2 too.
            let denied = try curl(["--http2-prior-knowledge", "\(server.baseURL)/v1/projects"])
            #expect(denied.status == "401")
            #expect(denied.body.contains(#""code":"unauthorized""#))
        }
    }

    @Test func tlsPortNegotiatesHTTP2AndHTTP1WithALPN() async throws {
        let dir = NSTemporaryDirectory() + "kaizen-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", "\(dir)/key.pem", "-out", "\(dir)/cert.pem",
        ])
        #expect(made.status == 0, "openssl: \(made.error)")
        let tlsPort = try EmbeddedPostgresPort.free()
        try await withServer(configure: {
            $0.tlsCertificatePath = "\(dir)/cert.pem"
            $0.tlsKeyPath = "\(dir)/key.pem"
            $0.tlsPort = tlsPort
        }) { server, _ in
            let url = "https://127.0.0.1:\(tlsPort)/v1/projects"
            let auth = ["-H", "Authorization: Bearer \(server.adminToken)", "--cacert", "\(dir)/cert.pem"]
            let h2 = try curl(["--http2", url] + auth)
            #expect(h2.version == "2")
            #expect(h2.status == "200")
            let h1 = try curl(["--http1.1", url] + auth)
            #expect(h1.version == "1.1")
            #expect(h1.status == "200")
        }
    }
}

import Storage

enum EmbeddedPostgresPort {
    static func free() throws -> Int { try EmbeddedPostgres.freePort() }
}
