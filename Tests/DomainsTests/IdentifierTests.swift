import Testing

@testable import Domains

@Suite struct IdentifierTests {
    @Test func ulidRoundTripsThroughItsText() throws {
        let ulid = ULID(milliseconds: 1_732_000_000_000)
        let text = ulid.description
        #expect(text.count == 26)
        let parsed = try #require(ULID(string: text))
        #expect(parsed == ulid)
        #expect(parsed.milliseconds == 1_732_000_000_000)
        #expect(ULID(string: text.lowercased()) == ulid)
    }

    @Test func ulidsSortByTime() {
        let earlier = ULID(milliseconds: 1_000).description
        let later = ULID(milliseconds: 2_000).description
        #expect(earlier < later)
    }

    @Test func ascendingULIDsSortInTheOrderHandedOut() {
        var fresh = ULID.ascending(count: 1_000, milliseconds: 1_732_000_000_000)
        var ids: [ULID] = []
        while let id = fresh.next() { ids.append(id) }
        #expect(ids.count == 1_000)
        #expect(Set(ids).count == 1_000)
        #expect(ids.allSatisfy { $0.milliseconds == 1_732_000_000_000 })
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0.lowercased < $1.lowercased })
        // Across the low 64 bits' end, the count carries into the high random bits, never into the time.
        let carried = Array(AnyIterator(ULID.ascending(count: 3, milliseconds: 5, from: (7, .max - 1))))
        #expect(carried.map(\.milliseconds) == [5, 5, 5])
        #expect(carried[0].lowercased < carried[1].lowercased && carried[1].lowercased < carried[2].lowercased)
        #expect(carried[2].high & 0xFFFF == 8 && carried[2].low == 0)
    }

    @Test func byteOrderSortsAsTheUTF8BytesCompare() {
        // Shared prefixes longer and shorter than the eight ranked bytes, strings that end inside them,
        // duplicates, the empty string and text beyond ASCII (where byte order and `String`'s `<` differ).
        var strings = ["", "a", "a", "ab", "abc", "b", "é", "e\u{301}", "z", "Z", "ÿ", "😀", "a\u{1}", "ab\u{7F}"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab/_:é😀Z0")
        for _ in 0..<2_000 {
            let prefix = ["", "case_01kb8x4q7z", "Tests/Suite1.swift::Suite1::test_"].randomElement(using: &generator)!
            let tail = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            strings.append(prefix + tail)
        }
        for sample in [strings, Array(strings.prefix(1)), [], Array(repeating: "same", count: 5), strings.filter { $0.hasPrefix("case_") }] {
            let ordered = ByteOrder.sorted(sample)
            #expect(ordered.count == sample.count)
            #expect(ordered.sorted() == sample.sorted(), "a permutation of the input")
            #expect(zip(ordered, ordered.dropFirst()).allSatisfy { !$1.utf8.lexicographicallyPrecedes($0.utf8) })
        }
    }

    @Test func ulidRejectsBadText() {
        #expect(ULID(string: "short") == nil)
        #expect(ULID(string: "8ZZZZZZZZZZZZZZZZZZZZZZZZZ") == nil)  // overflows 128 bits
        #expect(ULID(string: "01JD3XK8R9M2V4Q6T8W0Y2A4C!") == nil)
    }

    @Test func resourceIDsCarryTheirPrefix() {
        let id = ResourceID.make(.project)
        #expect(id.hasPrefix("prj_"))
        #expect(ResourceID.isValid(id, prefix: .project))
        #expect(!ResourceID.isValid(id, prefix: .workspace))
        #expect(!ResourceID.isValid("prj_nope", prefix: .project))
    }

    @Test func resourceIDsRoundTripThroughTheirULID() throws {
        let id = ResourceID.make(.testCase)
        let ulid = try #require(ResourceID.ulid(id, prefix: .testCase))
        #expect(ResourceID.string(.testCase, ulid) == id)
        #expect(ulid.lowercased == ulid.description.lowercased())
        let written = ulid.withLowercasedBytes { String(decoding: $0, as: UTF8.self) }
        #expect("case_" + written == id)
        #expect(ResourceID.ulid(id, prefix: .run) == nil)
        #expect(ResourceID.ulid("case_nope", prefix: .testCase) == nil)
    }

    /// The ingest caches' key: equal keys give equal digests, and 200,000 distinct keys shaped like a
    /// suite's (the shape the load harness pushes) give 200,000 distinct digests.
    @Test func caseKeyDigestsTellKeysApart() {
        #expect(CaseKeyDigest("Suite1::test_1") == CaseKeyDigest("Suite1::test_1"))
        #expect(CaseKeyDigest("Suite1::test_1") != CaseKeyDigest("Suite1::test_10"))
        #expect(CaseKeyDigest("") != CaseKeyDigest("\u{0}"))
        // The same bytes whatever the String's representation (inline, native, built piecewise).
        let long = "Suite::" + String(repeating: "é", count: 30)
        #expect(CaseKeyDigest(long) == CaseKeyDigest(String(decoding: Array(long.utf8), as: UTF8.self)))
        #expect(CaseKeyDigest("short") == CaseKeyDigest(String("xshort".dropFirst())))
        // Bytes, as PostgreSQL compares: "é" precomposed and decomposed are two keys.
        #expect(CaseKeyDigest("caf\u{E9}") != CaseKeyDigest("cafe\u{301}"))
        let keys = (0..<200_000).map { "Suite\($0 % 40)::test_\($0)" }
        #expect(Set(CaseKeyDigest.of(keys)).count == keys.count)
    }

    @Test(arguments: ["acme", "acme-web", "a", "a1-b2", String(repeating: "x", count: 63)])
    func validSlugs(_ slug: String) {
        #expect(Slug.problem(slug) == nil)
    }

    @Test(arguments: ["", "-acme", "acme-", "Acme", "ac me", "acmé", "a_b", String(repeating: "x", count: 64)])
    func invalidSlugs(_ slug: String) {
        #expect(Slug.problem(slug) != nil)
    }
}

@Suite struct TokenSecretTests {
    @Test func generatedSecretsHaveTheKrtShape() {
        let secret = TokenSecret.generate()
        #expect(secret.hasPrefix("krt_"))
        #expect(secret.count == 47)
        #expect(TokenSecret.looksValid(secret))
        #expect(TokenSecret.generate() != secret)
    }

    @Test func hashIsHexSHA256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        #expect(TokenSecret.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func rejectsForeignTokens() {
        #expect(!TokenSecret.looksValid("ghp_abcdef"))
        #expect(!TokenSecret.looksValid("krt_short"))
        #expect(!TokenSecret.looksValid("krt_" + String(repeating: "!", count: 43)))
    }

    @Test func hintShowsOnlyAPrefix() {
        let secret = TokenSecret.generate()
        #expect(TokenSecret.hint(secret).count == 10)
        #expect(secret.hasPrefix(TokenSecret.hint(secret)))
    }
}

@Suite struct RoleTests {
    @Test func viewersCannotWrite() {
        #expect(!Role.viewer.canWrite)
        #expect(Role.member.canWrite)
        #expect(!Role.member.canAdminister)
        #expect(Role.admin.canAdminister)
        #expect(Role.viewer < Role.member && Role.member < Role.admin)
    }

    @Test func privateProjectsAreHiddenFromMembersUserTokens() {
        #expect(AccessMode.team.visible(to: .viewer, tokenClass: .user))
        #expect(!AccessMode.private.visible(to: .member, tokenClass: .user))
        #expect(AccessMode.private.visible(to: .admin, tokenClass: .user))
        #expect(AccessMode.private.visible(to: .viewer, tokenClass: .workspace))
    }
}
