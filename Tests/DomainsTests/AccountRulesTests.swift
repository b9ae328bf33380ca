import Domains
import Foundation
import Testing

@Suite struct AccountRulesTests {
    @Test func thePasswordRuleIsTheDocumentedOne() {
        func problem(_ password: String, _ email: String = "dev@example.com") -> String? {
            AccountRules.validatePassword(password, email: email, pointer: "/password")?.message
        }
        #expect(problem("short") != nil, "fewer than 10 characters")
        #expect(problem("nine char") != nil)
        #expect(problem("ten chars!") == nil)
        #expect(problem("dev@example.com") != nil, "the email")
        #expect(problem("DEV@EXAMPLE.COM") != nil, "the email in another case")
        #expect(problem("developer1", "developer1@example.com") != nil, "the email's name part")
        #expect(problem("Password123") != nil, "a common password, in any case")
        #expect(problem("qwertyuiop") != nil)
        #expect(problem(String(repeating: "x", count: 1025)) != nil, "bounded")
        #expect(problem("correct horse battery staple") == nil)
        #expect(AccountRules.validatePassword("short", email: "a@b.c", pointer: "/newPassword")?.pointer == "/newPassword")
    }

    @Test func linkSecretsAreNotTokensAndTheOtherWayRound() {
        let link = LinkSecret.generate()
        #expect(link.hasPrefix("kln_") && link.count == 47)
        #expect(LinkSecret.looksValid(link))
        #expect(!TokenSecret.looksValid(link))
        #expect(!LinkSecret.looksValid(TokenSecret.generate()))
        #expect(!LinkSecret.looksValid("kln_short"))
        #expect(LinkSecret.generate() != link)
    }

    @Test func invitationStates() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        func invitation(expires: Double, accepted: Bool = false, revoked: Bool = false) -> Invitation {
            Invitation(
                id: "inv_x", workspaceID: "ws_x", email: "a@b.c", role: .member, createdBy: nil, createdAt: now,
                expiresAt: now.addingTimeInterval(expires), acceptedAt: accepted ? now : nil, revokedAt: revoked ? now : nil)
        }
        #expect(invitation(expires: 60).state(at: now) == .pending)
        #expect(invitation(expires: 0).state(at: now) == .expired)
        #expect(invitation(expires: -60, accepted: true).state(at: now) == .accepted)
        #expect(invitation(expires: 60, revoked: true).state(at: now) == .revoked)
    }

    @Test func ownersOutrankAdmins() {
        #expect(Role.owner > .admin && Role.admin > .member && Role.member > .viewer)
        #expect(Role.owner.canAdminister && Role.admin.canAdminister && !Role.member.canAdminister)
        #expect(Role.owner.canWrite && !Role.viewer.canWrite)
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xab, 0xff]
        #expect(Hex.bytes(Hex.string(bytes)) == bytes)
        #expect(Hex.bytes("ABff") == [0xab, 0xff])
        #expect(Hex.bytes("abc") == nil)
        #expect(Hex.bytes("zz") == nil)
    }

    @Test func peekingABucketTakesNothing() {
        var bucket = TokenBucket(capacity: 2, nowNanos: 0)
        #expect(bucket.peek(capacity: 2, ratePerSecond: 1, nowNanos: 0) == .allowed(remaining: 1))
        #expect(bucket.peek(capacity: 2, ratePerSecond: 1, nowNanos: 0) == .allowed(remaining: 1))
        _ = bucket.take(capacity: 2, ratePerSecond: 1, nowNanos: 0)
        _ = bucket.take(capacity: 2, ratePerSecond: 1, nowNanos: 0)
        #expect(bucket.peek(capacity: 2, ratePerSecond: 1, nowNanos: 0) == .limited(retryAfterSeconds: 1))
        #expect(bucket.peek(capacity: 2, ratePerSecond: 1, nowNanos: 1_000_000_000) == .allowed(remaining: 0))
    }
}
