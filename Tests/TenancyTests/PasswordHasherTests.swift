import Testing

@testable import Tenancy

@Suite struct PasswordHasherTests {
    /// The default cost is what the issue asks for (≥ 12); tests elsewhere run at 4 for speed.
    @Test func bcryptAtTheConfiguredCostAndLongPasswordsStayDistinct() async throws {
        let hasher = BcryptPasswordHasher(cost: 12)
        let hash = try await hasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$2b$12$"))
        #expect(!hash.contains("correct"))
        #expect(try await hasher.verify("correct horse battery staple", hash: hash))
        #expect(try await !hasher.verify("correct horse battery stapler", hash: hash))

        // bcrypt alone reads 72 bytes: two passwords equal up to there must not be interchangeable.
        let fast = BcryptPasswordHasher(cost: 4)
        let prefix = String(repeating: "a", count: 80)
        let long = try await fast.hash(prefix + "1")
        #expect(try await fast.verify(prefix + "1", hash: long))
        #expect(try await !fast.verify(prefix + "2", hash: long))
        // A hash that is no bcrypt hash verifies nothing (and does not crash).
        #expect(try await !fast.verify("anything", hash: "not a hash"))
    }
}
