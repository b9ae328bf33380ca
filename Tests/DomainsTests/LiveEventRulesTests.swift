import Domains
import Foundation
import Testing

/// The pure rules behind live streams and notifications.
@Suite struct LiveEventRulesTests {
    @Test func streamPositionsAreDigitsOnly() {
        #expect(StreamPosition.parse("0") == 0)
        #expect(StreamPosition.parse("123456789012345678") == 123_456_789_012_345_678)
        for bad in ["", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1234567890123456789", "１２"] {
            #expect(StreamPosition.parse(bad) == nil, "\(bad)")
        }
    }

    func event(_ id: String, _ kind: String, project: String = "prj_1", slug: String = "web", _ payload: [String: Any]) -> NotifiableEvent {
        let data = try! JSONSerialization.data(withJSONObject: payload)
        return NotifiableEvent(
            id: id, kind: kind, projectID: project, projectSlug: slug, defaultBranch: "main", payload: String(decoding: data, as: UTF8.self))
    }

    @Test func newFailuresOnlyOnTheDefaultBranchAndOnlyWhenThereAreSome() {
        let drafts = NotificationRules.drafts(for: [
            event("e1", "run.finalized", ["runId": "run_1", "branch": "main", "regression": ["newFailures": 2], "newFailureNames": ["a", "b"]]),
            event("e2", "run.finalized", ["runId": "run_2", "branch": "feature", "regression": ["newFailures": 3]]),
            event("e3", "run.finalized", ["runId": "run_3", "branch": "main", "regression": ["newFailures": 0]]),
        ])
        #expect(drafts.count == 1)
        #expect(drafts[0].category == .newFailures && drafts[0].title == "2 new failures on main in web" && drafts[0].url == "/runs/run_1")
        #expect(drafts[0].body == "a\nb")
    }

    @Test func longListsAreCutAndFlakyCasesOfABatchAreOneNotification() {
        let names = (1...9).map { "case \($0)" }
        let drafts = NotificationRules.drafts(for: [
            event("e1", "run.finalized", ["runId": "run_1", "branch": "main", "regression": ["newFailures": 9], "newFailureNames": names]),
            event("e2", "flaky.detected", ["caseId": "case_1"]),
            event("e3", "flaky.detected", ["caseId": "case_2"]),
            event("e4", "flaky.detected", project: "prj_2", slug: "api", ["caseId": "case_3"]),
            event("e5", "run.gate_failed", ["runId": "run_1", "branch": "main", "failedRules": [["rule": "maxFailures"]]]),
            event("e6", "defect.opened", ["defectId": "dft_1", "title": "Login <breaks>"]),
            event("e7", "webhook.disabled", ["webhookId": "whk_1", "url": "https://x.example/h", "reason": "410 Gone"]),
            event("e8", "case.quarantined", ["caseId": "case_1"]),
        ])
        #expect(drafts.map(\.category) == [.newFailures, .gateFailed, .defectOpened, .webhookDisabled, .flakyDetected, .flakyDetected])
        #expect(drafts[0].body.hasSuffix("… and 4 more") && drafts[0].body.split(separator: "\n").count == 6)
        #expect(drafts[1].body == "Failed rules: maxFailures.")
        #expect(drafts[2].body == "Login <breaks>", "stored as written: pages escape it")
        #expect(drafts[3].body == "https://x.example/h: 410 Gone")
        #expect(drafts[4].title == "2 cases became flaky in web" && drafts[4].eventID == "e2")
        #expect(drafts[5].title == "1 case became flaky in api" && drafts[5].projectID == "prj_2")
    }

    @Test func defaultsFollowTheRole() {
        #expect(NotificationCategory.defaults(for: .owner) == [.newFailures, .gateFailed, .webhookDisabled])
        #expect(NotificationCategory.defaults(for: .admin) == [.newFailures, .gateFailed, .webhookDisabled])
        #expect(NotificationCategory.defaults(for: .member).isEmpty)
        #expect(NotificationCategory.defaults(for: .viewer).isEmpty)
    }
}
