import Foundation
import Testing

@testable import Domains

@Suite struct KenshoJSONTests {
    func both(_ json: String) throws -> (KenshoRun, KenshoRun) {
        (try KenshoJSON.decode(Array(json.utf8)), try JSONDecoder().decode(KenshoRun.self, from: Data(json.utf8)))
    }

    @Test func agreesWithJSONDecoderOnARichDocument() throws {
        let json = #"""
            {"uploadId":"upl_1","schemaVersion":"kensho/v1","runId":"x","project":{"slug":"web","extra":[1,{"a":null}]},
             "externalRunId":"gh-1","branch":"main","commit":"abc","buildUrl":"https://ci/1","startedAt":"2026-04-30T12:00:14Z",
             "env":{"os":"linux","emoji":"\ud83d\ude80"},"totals":{"passed":1,"failed":1,"skipped":0,"broken":0,"flaky":1},
             "unknown":{"deep":[true,false,null,-1.5e3]},
             "cases":[{"key":"k1","name":"tab\there \"quoted\" \\ back \/ slash \u00e9","suite":"S","fullName":"S.a","file":"a.swift",
                       "status":"passed","durationMs":12.5,"retries":[{"status":"failed","durationMs":3,"error":{"message":"m"}}],
                       "labels":{"owner":"me"},"parameters":{"p":"1"},"attachments":["a1"],
                       "steps":[{"name":"s","status":"passed","durationMs":1,"attachments":[],"steps":[{"name":"t","status":"failed"}]}]},
                      {"name":"b","status":"failed","error":{"type":"E","message":"boom","trace":"at x\nat y"},"durationMs":null}]}
            """#
        let (fast, reference) = try both(json)
        #expect(fast == reference)
        #expect(fast.cases?.first?.name == "tab\there \"quoted\" \\ back / slash é")
        #expect(fast.env?["emoji"] == "🚀")
    }

    @Test func malformedJSONIsDataCorrupted() {
        for bad in [#"{"cases": [}"#, #"{"a":1"#, #"{"a":"\x"}"#, "{\"a\":\"\u{01}\"}", #"{"a":tru}"#, #"{} extra"#, #"{"a":01.}"#] {
            #expect {
                _ = try KenshoJSON.decode(Array(bad.utf8))
            } throws: { error in
                guard case DecodingError.dataCorrupted(let context) = error else { return false }
                return context.codingPath.isEmpty
            }
        }
    }

    @Test func wrongTypesNameTheirPath() {
        #expect {
            _ = try KenshoJSON.decode(Array(#"{"cases":[{"name":"a"},{"name":5}]}"#.utf8))
        } throws: { error in
            guard case DecodingError.typeMismatch(_, let context) = error else { return false }
            return context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue } == ["cases", "1", "name"]
        }
        #expect(throws: DecodingError.self) { _ = try KenshoJSON.decode(Array(#"{"cases":"nope"}"#.utf8)) }
        #expect(throws: DecodingError.self) { _ = try KenshoJSON.decode(Array(#"{"totals":{"passed":1.5}}"#.utf8)) }
    }
}
