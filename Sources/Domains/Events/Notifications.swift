import Foundation

/// What can reach a person's inbox from a project.
public enum NotificationCategory: String, Sendable, CaseIterable, Codable {
    /// A run on the project's default branch brought new failures.
    case newFailures = "new_failures"
    case gateFailed = "gate_failed"
    case flakyDetected = "flaky_detected"
    case defectOpened = "defect_opened"
    /// Kaizen turned a webhook off (its receiver answered 410, or failed for a day).
    case webhookDisabled = "webhook_disabled"

    /// What a person gets from a project until they choose: admins and owners hear about what breaks
    /// (new failures on the default branch, failed gates, disabled webhooks); members and viewers opt in.
    /// Flaky cases and defects are opt-in for everyone: they come in numbers, and people file defects.
    public static func defaults(for role: Role) -> Set<NotificationCategory> {
        role.canAdminister ? [.newFailures, .gateFailed, .webhookDisabled] : []
    }
}

public enum NotificationSeverity: String, Sendable, Codable {
    case info, success, warning, error
}

/// One notification in a person's inbox.
public struct NotificationRecord: Sendable, Hashable {
    /// The stream's order (what `Last-Event-ID` carries on the notification stream).
    public let seq: Int64
    public let id: String
    public let workspaceID: String
    public let workspaceSlug: String
    public let projectSlug: String?
    public let category: NotificationCategory
    public let severity: NotificationSeverity
    public let title: String
    public let body: String
    public let url: String?
    /// A JSON object.
    public let payload: String
    public let read: Bool
    public let createdAt: Date

    public init(
        seq: Int64, id: String, workspaceID: String, workspaceSlug: String, projectSlug: String?, category: NotificationCategory,
        severity: NotificationSeverity, title: String, body: String, url: String?, payload: String, read: Bool, createdAt: Date
    ) {
        self.seq = seq
        self.id = id
        self.workspaceID = workspaceID
        self.workspaceSlug = workspaceSlug
        self.projectSlug = projectSlug
        self.category = category
        self.severity = severity
        self.title = title
        self.body = body
        self.url = url
        self.payload = payload
        self.read = read
        self.createdAt = createdAt
    }
}

/// A notification before it has recipients: what one event (or one batch's flaky cases) says.
public struct NotificationDraft: Sendable, Hashable {
    public let eventID: String
    public let projectID: String
    public let category: NotificationCategory
    public let severity: NotificationSeverity
    public let title: String
    public let body: String
    public let url: String?
    public let payload: String
}

/// An event as the notifier reads it from the log, with what it needs of its project.
public struct NotifiableEvent: Sendable {
    public let id: String
    public let kind: String
    public let projectID: String
    public let projectSlug: String
    public let defaultBranch: String
    public let payload: String

    public init(id: String, kind: String, projectID: String, projectSlug: String, defaultBranch: String, payload: String) {
        self.id = id
        self.kind = kind
        self.projectID = projectID
        self.projectSlug = projectSlug
        self.defaultBranch = defaultBranch
        self.payload = payload
    }
}

/// Which events become notifications, and how they read. Pure: the notifier gives it the log's events
/// in order and stores what comes out.
public enum NotificationRules {
    /// The kinds the notifier reads; everything else in the log concerns nobody's inbox.
    public static let kinds = ["run.finalized", "run.gate_failed", "flaky.detected", "defect.opened", "webhook.disabled"]

    /// Names listed in a body, at most; the rest is counted.
    static let listed = 5

    /// Drafts for `events` (in log order). A batch's `flaky.detected` events of one project become one
    /// notification (a roll-up can find dozens at once), named by the first event's id.
    public static func drafts(for events: [NotifiableEvent]) -> [NotificationDraft] {
        var out: [NotificationDraft] = []
        var flaky: [String: (first: NotifiableEvent, cases: [String])] = [:]
        var flakyOrder: [String] = []
        for event in events {
            let object = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) as? [String: Any] ?? [:]
            let slug = event.projectSlug
            switch event.kind {
            case "run.finalized":
                let branch = object["branch"] as? String ?? ""
                let regression = object["regression"] as? [String: Any] ?? [:]
                let count = (regression["newFailures"] as? NSNumber)?.intValue ?? 0
                guard branch == event.defaultBranch, count > 0, let runID = object["runId"] as? String else { continue }
                let names = object["newFailureNames"] as? [String] ?? []
                out.append(
                    NotificationDraft(
                        eventID: event.id, projectID: event.projectID, category: .newFailures, severity: .error,
                        title: "\(count) new failure\(count == 1 ? "" : "s") on \(branch) in \(slug)",
                        body: list(names, total: count), url: "/runs/\(runID)",
                        payload: json(["runId": runID, "branch": branch, "newFailures": count, "project": slug])))
            case "run.gate_failed":
                let branch = object["branch"] as? String ?? ""
                guard let runID = object["runId"] as? String else { continue }
                let rules = (object["failedRules"] as? [[String: Any]] ?? []).compactMap { $0["rule"] as? String }
                out.append(
                    NotificationDraft(
                        eventID: event.id, projectID: event.projectID, category: .gateFailed, severity: .error,
                        title: "Quality gate failed on \(branch) in \(slug)",
                        body: rules.isEmpty ? "The run did not pass the project's gate." : "Failed rules: \(rules.joined(separator: ", ")).",
                        url: "/runs/\(runID)", payload: json(["runId": runID, "branch": branch, "failedRules": rules, "project": slug])))
            case "flaky.detected":
                guard let caseID = object["caseId"] as? String else { continue }
                if flaky[event.projectID] == nil {
                    flaky[event.projectID] = (event, [])
                    flakyOrder.append(event.projectID)
                }
                flaky[event.projectID]!.cases.append(caseID)
            case "defect.opened":
                let title = object["title"] as? String ?? ""
                guard let defectID = object["defectId"] as? String else { continue }
                out.append(
                    NotificationDraft(
                        eventID: event.id, projectID: event.projectID, category: .defectOpened, severity: .info,
                        title: "Defect opened in \(slug)", body: title, url: "/projects/\(slug)/defects",
                        payload: json(["defectId": defectID, "title": title, "project": slug])))
            case "webhook.disabled":
                let reason = object["reason"] as? String ?? ""
                let url = object["url"] as? String ?? ""
                guard let hookID = object["webhookId"] as? String else { continue }
                out.append(
                    NotificationDraft(
                        eventID: event.id, projectID: event.projectID, category: .webhookDisabled, severity: .error,
                        title: "A webhook of \(slug) was disabled", body: "\(url): \(reason)", url: "/projects/\(slug)",
                        payload: json(["webhookId": hookID, "url": url, "reason": reason, "project": slug])))
            default:
                continue
            }
        }
        for projectID in flakyOrder {
            let (first, cases) = flaky[projectID]!
            out.append(
                NotificationDraft(
                    eventID: first.id, projectID: projectID, category: .flakyDetected, severity: .warning,
                    title: "\(cases.count) case\(cases.count == 1 ? "" : "s") became flaky in \(first.projectSlug)",
                    body: "See the project's flaky cases for the evidence.", url: "/projects/\(first.projectSlug)/flaky",
                    payload: json(["caseIds": Array(cases.prefix(100)), "count": cases.count, "project": first.projectSlug])))
        }
        return out
    }

    static func list(_ names: [String], total: Int) -> String {
        let shown = names.prefix(listed).map { String($0.prefix(200)) }
        let rest = total - shown.count
        return shown.joined(separator: "\n") + (rest > 0 ? "\n… and \(rest) more" : "")
    }

    static func json(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// Reading a person's inbox.
public struct NotificationQuery: Sendable, Hashable {
    public var unreadOnly: Bool
    /// Older than this seq (the page cursor).
    public var before: Int64?
    public var limit: Int

    public init(unreadOnly: Bool = false, before: Int64? = nil, limit: Int = 50) {
        self.unreadOnly = unreadOnly
        self.before = before
        self.limit = limit
    }
}
