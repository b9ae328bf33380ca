import AsyncHTTPClient
import Foundation
import KaizenServer
import KaizenTestSupport
import NIOCore
import Storage
import Tenancy
import Testing

/// The S3 backend end to end: Kaizen presigns, the client uploads straight to an S3-compatible
/// server (moto, a real HTTP server speaking the S3 API), finalize confirms each blob with a HEAD,
/// and downloads redirect to a presigned GET.
@Suite struct S3BlobStoreTests {
    /// PUTs to a presigned S3 URL with the headers init said to send.
    func upload(_ presigned: [String: Any], _ data: Data) async throws -> Int {
        var request = HTTPClientRequest(url: presigned["url"] as! String)
        request.method = .PUT
        for (name, value) in presigned["fields"] as? [String: String] ?? [:] { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await testHTTPClient.execute(request, timeout: testRequestTimeout)
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    @Test func pushThroughS3WithHeadChecksAndRedirectedDownloads() async throws {
        let bucket = try await TestS3.shared.freshBucket()
        try await withServer(configure: { $0.s3 = bucket }) { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let log = Data("s3 line 1\ns3 line 2\n".utf8)
            let shot = Data((0..<8192).map { UInt8($0 % 253) })
            let lying = Data("declared with another size".utf8)
            let never = Data("never uploaded".utf8)
            let declarations: [[String: Any]] = [
                ["id": "log", "sha256": sha256Hex(log), "size": log.count, "contentType": "text/plain"],
                ["id": "shot", "sha256": sha256Hex(shot), "size": shot.count, "contentType": "image/png"],
                ["id": "lying", "sha256": sha256Hex(lying), "size": lying.count + 5, "contentType": "text/plain"],
                ["id": "never", "sha256": sha256Hex(never), "size": never.count, "contentType": "text/plain"],
            ]
            let initReply = try await admin.post(
                "/v1/ingest/kensho/init", json: ["projectSlug": "web", "externalRunId": "s3-1", "attachments": declarations])
            #expect(initReply.status == 200, "\(initReply.text)")
            let uploadId = try #require(initReply.object["uploadId"] as? String)
            let presigned = Dictionary(
                uniqueKeysWithValues: (initReply.object["presigned"] as? [[String: Any]] ?? []).map { ($0["id"] as! String, $0) })
            #expect(presigned.count == 4)
            let logTarget = try #require(presigned["log"])
            let url = logTarget["url"] as! String
            #expect(url.hasPrefix("\(bucket.endpoint)/\(bucket.bucket)/blobs/\(sha256Hex(log))?"))
            #expect(url.contains("X-Amz-Signature="))
            #expect(url.contains("X-Amz-Expires=300"))
            #expect(url.contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256"))
            let fields = logTarget["fields"] as? [String: String] ?? [:]
            #expect(fields["Content-Type"] == "text/plain")
            #expect(fields["x-amz-checksum-sha256"] == S3BlobStore.base64Checksum(hexSHA256: sha256Hex(log)))

            #expect(try await upload(logTarget, log) == 200)
            #expect(try await upload(presigned["shot"]!, shot) == 200)
            #expect(try await upload(presigned["lying"]!, lying) == 200)  // the store takes it; HEAD sees the size

            // Kaizen's own upload endpoint is not where S3 blobs go.
            let own = try await put("\(server.baseURL)/v1/uploads/\(uploadId)/log?workspace=x&expires=1&signature=00", log)
            #expect(own.status == 404)

            // Referencing the never-uploaded and the wrong-size attachment names both.
            let bad = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "s3-1",
                    cases: [testCase("a", "failed", attachments: ["log", "never"]), testCase("b", "passed", attachments: ["lying"])],
                    uploadId: uploadId))
            #expect(bad.status == 422, "\(bad.text)")
            #expect(Set(bad.errorPointers) == ["/cases/0/attachments/1", "/cases/1/attachments/0"])

            let good = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "s3-1",
                    cases: [testCase("a", "failed", attachments: ["log"], steps: [
                        ["name": "shoot", "status": "passed", "durationMs": 1, "attachments": ["shot"]],
                    ])],
                    uploadId: uploadId))
            #expect(good.status == 200, "\(good.text)")
            let runId = try #require(good.object["internalRunId"] as? String)

            // Downloads redirect to a presigned GET on the store, which serves the bytes.
            let cases = try await admin.get("/v1/runs/\(runId)/cases")
            let caseId = try #require(cases.object["items"].flatMap { ($0 as? [[String: Any]])?.first?["caseId"] as? String })
            let detail = try await admin.get("/v1/runs/\(runId)/cases/\(caseId)")
            let links = (detail.object["attachments"] as? [[String: Any]] ?? []).compactMap { $0["downloadUrl"] as? String }
            #expect(links.count == 2)
            let noRedirects = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
            for link in links {
                var request = HTTPClientRequest(url: link)
                request.headers.add(name: "Authorization", value: "Bearer \(server.adminToken)")
                let response = try await noRedirects.execute(request, timeout: testRequestTimeout)
                _ = try await response.body.collect(upTo: 1 << 20)
                #expect(response.status.code == 302)
                let location = try #require(response.headers.first(name: "location"))
                #expect(location.hasPrefix(bucket.endpoint))
                let fetched = try await noRedirects.execute(HTTPClientRequest(url: location), timeout: testRequestTimeout)
                let body = Data(buffer: try await fetched.body.collect(upTo: 1 << 20))
                #expect(fetched.status.code == 200)
                #expect(body == (link.hasSuffix("/log") ? log : shot))
            }
            try await noRedirects.shutdown()

            // The confirmed blobs are known to the workspace now: a later run need not upload them.
            let again = try await admin.post(
                "/v1/ingest/kensho/init",
                json: ["projectSlug": "web", "externalRunId": "s3-2", "attachments": Array(declarations.prefix(3))])
            #expect(Set(again.object["alreadyExists"] as? [String] ?? []) == ["log", "shot"])
            #expect((again.object["presigned"] as? [[String: Any]] ?? []).map { $0["id"] as? String } == ["lying"])
        }
    }

    @Test func startupRefusesAMissingBucket() async throws {
        var bucket = try await TestS3.shared.freshBucket()
        bucket.bucket += "-missing"
        await #expect(throws: StorageError.self) {
            try await withServer(configure: { $0.s3 = bucket }) { _, _ in }
        }
    }

    @Test func configurationFromEnvironment() throws {
        let config = try KaizenConfiguration.fromEnvironment([
            "KAIZEN_BLOB_STORE": "s3", "KAIZEN_S3_BUCKET": "ci-results", "KAIZEN_S3_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
        ])
        #expect(config.s3?.endpoint == "https://s3.eu-west-1.amazonaws.com")
        #expect(config.s3?.pathStyle == false)
        #expect(config.s3?.credentials.accessKeyID == "AKID")
        #expect(throws: StorageError.self) {
            try KaizenConfiguration.fromEnvironment(["KAIZEN_BLOB_STORE": "s3", "KAIZEN_S3_BUCKET": "b"])
        }
        #expect(throws: StorageError.self) { try KaizenConfiguration.fromEnvironment(["KAIZEN_BLOB_STORE": "gcs"]) }
        #expect(try KaizenConfiguration.fromEnvironment([:]).s3 == nil)
        // A duration must be a finite, non-negative number: "inf" would trap converted to nanoseconds.
        for value in ["inf", "-1", "nan", "soon"] {
            #expect(throws: StorageError.self) { try KaizenConfiguration.fromEnvironment(["KAIZEN_INGEST_CACHE_IDLE_SECONDS": value]) }
        }
        #expect(try KaizenConfiguration.fromEnvironment(["KAIZEN_INGEST_CACHE_IDLE_SECONDS": "90"]).ingestCacheIdleSeconds == 90)
        // Roll-up backpressure: by default by age (a second), each variable overriding its part; its wait bounded.
        #expect(try KaizenConfiguration.fromEnvironment([:]).rollUpBackpressure == .standard)
        #expect(RollUpBackpressure.standard == RollUpBackpressure(maxLagSeconds: 1, maxWaitSeconds: 10))
        #expect(
            try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_BACKLOG": "2", "KAIZEN_ROLLUP_BACKLOG_WAIT_SECONDS": "5"])
                .rollUpBackpressure == RollUpBackpressure(maxPending: 2, maxLagSeconds: 1, maxWaitSeconds: 5))
        #expect(try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_BACKLOG": "1"]).rollUpBackpressure.maxWaitSeconds == 10)
        #expect(throws: StorageError.self) { try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_BACKLOG": "some"]) }
        #expect(
            try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_LAG_SECONDS": "2.5"]).rollUpBackpressure
                == RollUpBackpressure(maxLagSeconds: 2.5, maxWaitSeconds: 10))
        #expect(try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_LAG_SECONDS": "0"]).rollUpBackpressure.isOff)
        #expect(throws: StorageError.self) { try KaizenConfiguration.fromEnvironment(["KAIZEN_ROLLUP_MAX_LAG_SECONDS": "-1"]) }
    }
}
