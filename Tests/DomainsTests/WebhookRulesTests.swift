import Foundation
import Testing

@testable import Domains

/// The pure parts of webhooks: validation with pointers, the signature scheme, the network guard, bodies.
@Suite struct WebhookRulesTests {
    @Test func draftsAreValidatedWithPointers() throws {
        let ok = try WebhookRules.validate(
            WebhookDraft(url: "https://ci.example.com/k", events: ["run.finalized", "run.finalized", "flaky.detected"]), over: nil,
            allowHTTP: false
        ).get()
        #expect(ok.events == [.runFinalized, .flakyDetected] && ok.format == .kaizen && ok.active)
        func pointers(_ draft: WebhookDraft, allowHTTP: Bool = false) -> [String] {
            guard case .failure(let error) = WebhookRules.validate(draft, over: nil, allowHTTP: allowHTTP) else { return [] }
            guard case .array(let items)? = error.details["errors"] else { return [] }
            return items.compactMap { item in
                if case .string(let pointer)? = item["pointer"] { return pointer }
                return nil
            }
        }
        #expect(pointers(WebhookDraft()) == ["/url", "/events"])
        #expect(pointers(WebhookDraft(url: "http://ci.example.com", events: ["run.finalized"])) == ["/url"])
        #expect(pointers(WebhookDraft(url: "http://ci.example.com", events: ["run.finalized"]), allowHTTP: true) == [])
        #expect(pointers(WebhookDraft(url: "https://user:pw@ci.example.com", events: ["run.finalized"])) == ["/url"])
        #expect(pointers(WebhookDraft(url: "https://x.example.com", events: [])) == ["/events"])
        #expect(pointers(WebhookDraft(url: "https://x.example.com", events: ["x"], format: "xml", description: String(repeating: "d", count: 501)))
            == ["/events/0", "/format", "/description"])
        // A patch keeps what it does not name.
        let patched = try WebhookRules.validate(WebhookDraft(active: false), over: ok, allowHTTP: false).get()
        #expect(patched.url == ok.url && patched.events == ok.events && !patched.active)
    }

    @Test func signaturesFollowStripesSchemeAndCarryEverySecret() {
        let body = Array(#"{"id":"evt_1"}"#.utf8)
        let header = WebhookSignature.header(secrets: ["whsec_new", "whsec_old"], timestamp: 1_700_000_000, body: body)
        let parts = header.split(separator: ",")
        #expect(parts.count == 3 && parts[0] == "t=1700000000")
        #expect(WebhookSignature.verify(header: header, secret: "whsec_new", body: body, now: 1_700_000_010))
        #expect(WebhookSignature.verify(header: header, secret: "whsec_old", body: body, now: 1_700_000_010))
        #expect(!WebhookSignature.verify(header: header, secret: "whsec_other", body: body, now: 1_700_000_010))
        #expect(!WebhookSignature.verify(header: header, secret: "whsec_new", body: body + [0x20], now: 1_700_000_010))
        // Replayed much later: refused.
        #expect(!WebhookSignature.verify(header: header, secret: "whsec_new", body: body, now: 1_700_001_000))
        // The MAC is HMAC-SHA256 of "t.body" (a value computed independently with Python's hmac module).
        #expect(WebhookSignature.mac(secret: "k", timestamp: 1, body: Array("b".utf8))
            == "2946e37a45bb02a0bf1bf1a7d9219543801fedd301f9f485aebd72c928639bea")
    }

    @Test func internalAddressesAreRefusedUnlessAllowed() throws {
        let none = NetworkPolicy()
        for address in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::",
                        "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::a9fe:a9fe", "224.0.0.1"]
        {
            let bytes = try #require(IPAddress.parse(address), "\(address)")
            #expect(none.refusal(bytes) != nil, "\(address) should be refused")
        }
        for address in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1", "100.128.0.1"] {
            let bytes = try #require(IPAddress.parse(address), "\(address)")
            #expect(none.refusal(bytes) == nil, "\(address) should be allowed")
        }
        let loopback = try NetworkPolicy.parse("127.0.0.0/8, ::1/128")
        #expect(loopback.refusal(IPAddress.parse("127.9.9.9")!) == nil)
        #expect(loopback.refusal(IPAddress.parse("::1")!) == nil)
        #expect(loopback.refusal(IPAddress.parse("10.0.0.1")!) != nil)
        #expect(throws: DomainError.self) { try NetworkPolicy.parse("10.0.0.0/33") }
        #expect(throws: DomainError.self) { try NetworkPolicy.parse("not-an-address") }
        for bad in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "1::2::3", "12345::", "a.b.c.d"] { #expect(IPAddress.parse(bad) == nil, "\(bad)") }
    }

    @Test func bodiesInEachFormat() throws {
        let payload: [String: Any] = [
            "runId": "run_1", "externalRunId": "build <7>", "branch": "main", "gate": "failed",
            "regression": ["newFailures": 2], "newFailureNames": ["a & b", "<script>"],
        ]
        func render(_ format: WebhookFormat) throws -> [String: Any] {
            let bytes = WebhookBody.render(
                format: format, eventID: "evt_1", kind: "run.finalized", createdAt: Date(timeIntervalSince1970: 0), workspaceID: "ws_1",
                projectID: "prj_1", projectSlug: "web", payload: payload, publicURL: "https://k.example.com")
            return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        }
        let kaizen = try render(.kaizen)
        #expect(kaizen["type"] as? String == "run.finalized" && kaizen["id"] as? String == "evt_1")
        #expect((kaizen["links"] as? [String: String])?["html"] == "https://k.example.com/runs/run_1")
        let slack = try render(.slack)
        let text = try #require(slack["text"] as? String)
        #expect(text == "web · build <7> on main: quality gate failed")
        let blocks = slack["blocks"] as? [[String: Any]] ?? []
        let rendered = String(decoding: try JSONSerialization.data(withJSONObject: blocks), as: UTF8.self)
        // Test-supplied text cannot become Slack markup.
        #expect(rendered.contains("a &amp; b") && rendered.contains("&lt;script&gt;") && !rendered.contains("<script>"))
        let teams = try render(.teams)
        #expect(teams["@type"] as? String == "MessageCard")
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        #expect(WebhookRetry.delaySeconds(afterAttempt: 1, jitter: 0.5) == 10)
        #expect(WebhookRetry.delaySeconds(afterAttempt: 3, jitter: 0.5) == 40)
        #expect(abs(WebhookRetry.delaySeconds(afterAttempt: 40, jitter: 1) - 3600 * 1.2) < 1e-6)
        #expect(WebhookRetry.delaySeconds(afterAttempt: 1, jitter: 0) == 8)
        #expect(WebhookRetry.retryable(status: 503) && WebhookRetry.retryable(status: 429) && !WebhookRetry.retryable(status: 404))
    }
}
