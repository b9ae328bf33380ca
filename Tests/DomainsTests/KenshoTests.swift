import Foundation
import Testing

@testable import Domains

@Suite struct RegressionTests {
    @Test(arguments: [
        (CaseStatus.failed, CaseStatus?.none, RegressionBucket?.some(.newFailure)),
        (.broken, .passed, .newFailure),
        (.failed, .skipped, .newFailure),
        (.failed, .failed, .stillFailing),
        (.broken, .failed, .stillFailing),
        (.passed, .failed, .fixed),
        (.passed, .broken, .fixed),
        (.skipped, .failed, nil),
        (.passed, .passed, nil),
        (.passed, nil, nil),
        (.skipped, nil, nil),
    ])
    func classify(current: CaseStatus, baseline: CaseStatus?, expected: RegressionBucket?) {
        #expect(RegressionBucket.classify(current: current, baseline: baseline) == expected)
    }
}

@Suite struct KenshoValidatorTests {
    func run(_ cases: [KenshoCase], totals: KenshoRun.Totals? = nil) -> KenshoRun {
        var computed = RunTotals()
        for item in cases { computed.count(CaseStatus(rawValue: item.status ?? "") ?? .passed, flaky: false) }
        return KenshoRun(
            project: .init(slug: "web"), externalRunId: "r1", branch: "main",
            totals: totals ?? .init(passed: computed.passed, failed: computed.failed, skipped: computed.skipped,
                                    broken: computed.broken, flaky: 0),
            cases: cases)
    }

    @Test func derivesStableKeysAndFlattensSteps() throws {
        let item = KenshoCase(
            name: "adds", suite: "Math", status: "passed", parameters: ["b": "2", "a": "1"],
            steps: [KenshoStep(name: "outer", status: "passed", steps: [KenshoStep(name: "inner", status: "passed")])])
        guard case .valid(let valid) = KenshoValidator().validate(run([item]), knownAttachments: []) else {
            Issue.record("expected a valid run")
            return
        }
        let only = try #require(valid.cases.first)
        #expect(only.key == "Math::adds(a=1,b=2)")
        #expect(only.steps.map(\.name) == ["outer", "inner"])
        #expect(only.steps[1].parent == 0)
        #expect(only.steps[1].depth == 1)
        #expect(StepNode.tree(only.steps).first?.children.first?.step.name == "inner")
    }

    @Test func retriedThenPassedIsFlaky() {
        let item = KenshoCase(name: "x", status: "passed", retries: [KenshoAttempt(status: "failed")])
        let document = run([item], totals: .init(passed: 1, failed: 0, skipped: 0, broken: 0, flaky: 1))
        guard case .valid(let valid) = KenshoValidator().validate(document, knownAttachments: []) else {
            Issue.record("expected a valid run")
            return
        }
        #expect(valid.cases[0].flaky)
        #expect(valid.cases[0].attempts == 2)
        #expect(valid.totals.flaky == 1)
    }

    @Test func problemsAreCapped() {
        let cases = (0..<500).map { _ in KenshoCase(name: nil, status: "nope") }
        guard case .invalid(let problems, _) = KenshoValidator().validate(run(cases), knownAttachments: []) else {
            Issue.record("expected problems")
            return
        }
        #expect(problems.count == 100)
    }

    @Test func longDerivedKeysAreHashed() {
        let key = KenshoValidator.derivedKey(suite: "S", name: String(repeating: "n", count: 600), parameters: [:])
        #expect(key.hasPrefix("sha256:"))
        #expect(key.count == 71)
    }
}

@Suite struct UploadSignerTests {
    let signer = UploadSigner(secretHex: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")

    @Test func signaturesVerifyUntilTheyExpire() {
        let expires = 1_800_000_000
        let signature = signer.signature(uploadID: "upl_1", attachmentID: "a", workspaceID: "ws_1", expires: expires)
        let before = Date(timeIntervalSince1970: Double(expires - 10))
        let after = Date(timeIntervalSince1970: Double(expires + 1))
        #expect(signer.verify(uploadID: "upl_1", attachmentID: "a", workspaceID: "ws_1", expires: expires, signature: signature, now: before) == .valid)
        #expect(signer.verify(uploadID: "upl_1", attachmentID: "a", workspaceID: "ws_1", expires: expires, signature: signature, now: after) == .expired)
        #expect(signer.verify(uploadID: "upl_1", attachmentID: "b", workspaceID: "ws_1", expires: expires, signature: signature, now: before) == .badSignature)
        #expect(signer.verify(uploadID: "upl_1", attachmentID: "a", workspaceID: "ws_2", expires: expires, signature: signature, now: before) == .badSignature)
        #expect(signer.verify(uploadID: "upl_1", attachmentID: "a", workspaceID: "ws_1", expires: expires, signature: "00", now: before) == .badSignature)
    }
}
