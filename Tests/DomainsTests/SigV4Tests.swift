import Foundation
import Testing

@testable import Domains

@Suite struct SigV4Tests {
    /// The example of "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)",
    /// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    static let example = SigV4Presigner(
        credentials: .init(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")

    @Test func publishedPresignedGetExample() {
        // 2013-05-24T00:00:00Z
        let signed = Self.example.presign(
            .init(method: "GET", scheme: "https", host: "examplebucket.s3.amazonaws.com", path: "/test.txt"),
            date: Date(timeIntervalSince1970: 1_369_353_600), expiresSeconds: 86_400)
        #expect(
            signed.canonicalRequest == """
                GET
                /test.txt
                X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host
                host:examplebucket.s3.amazonaws.com

                host
                UNSIGNED-PAYLOAD
                """)
        #expect(
            signed.stringToSign == """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04
                """)
        #expect(signed.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(
            signed.url
                == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test func signedHeadersAreSortedLowerCasedAndListed() {
        let signed = Self.example.presign(
            .init(
                method: "put", scheme: "http", host: "127.0.0.1:9000", path: "/bucket/blobs/ab cd",
                headers: [("X-Amz-Checksum-SHA256", "  a  b "), ("Content-Type", "text/plain")]),
            date: Date(timeIntervalSince1970: 0), expiresSeconds: 300)
        let lines = signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "PUT")
        #expect(lines[1] == "/bucket/blobs/ab%20cd")
        #expect(lines[3] == "content-type:text/plain")
        #expect(lines[4] == "host:127.0.0.1:9000")
        #expect(lines[5] == "x-amz-checksum-sha256:a b")
        #expect(lines[7] == "content-type;host;x-amz-checksum-sha256")
        #expect(signed.url.contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256"))
        #expect(signed.url.contains("X-Amz-Date=19700101T000000Z"))
    }

    @Test func timestampsAcrossLeapYearsAndCenturies() {
        #expect(SigV4Presigner.timestamps(Date(timeIntervalSince1970: 951_782_400)).0 == "20000229T000000Z")
        #expect(SigV4Presigner.timestamps(Date(timeIntervalSince1970: 4_107_542_399)).0 == "21000228T235959Z")
        #expect(SigV4Presigner.timestamps(Date(timeIntervalSince1970: 1_795_000_000)).0 == "20261118T110640Z")
    }

    @Test func encodingKeepsOnlyUnreservedCharacters() {
        #expect(SigV4Presigner.encode("a-b_c.d~e/f g+h=é", keepSlash: false) == "a-b_c.d~e%2Ff%20g%2Bh%3D%C3%A9")
        #expect(SigV4Presigner.encode("/a b/c", keepSlash: true) == "/a%20b/c")
    }
}
