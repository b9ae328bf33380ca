import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// The pages' content: home (projects and their latest runs), the run report, a case of a run.
extension WebPages {
    var api: KaizenAPI { KaizenAPI(deps: deps) }

    static let symbols = ["passed": "✔", "failed": "✘", "broken": "⚠", "skipped": "○"]

    static func duration(_ ms: Int?) -> String {
        guard let ms else { return "" }
        if ms < 1000 { return "\(ms) ms" }
        let seconds = Double(ms) / 1000
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        return "\(Int(seconds) / 60) min \(Int(seconds) % 60) s"
    }

    func home(_ identity: Identity, request: Request) async throws -> (template: String, view: [String: Any]) {
        // The switcher's choice narrows the page to one workspace; otherwise every workspace is listed.
        let chosen = request.uri.queryParameters["workspace"].map(String.init).flatMap { slug in
            identity.grants.contains { $0.workspaceSlug == slug } ? slug : nil
        }
        guard case .ok(let listed) = try await api.listProjects(.init(query: .init(workspace: chosen))) else {
            throw DomainError.internalError
        }
        let projects = try listed.body.json.map { try Self.plain($0) }
        var workspaces: [[String: Any]] = []
        for grant in identity.grants where chosen == nil || grant.workspaceSlug == chosen {
            var rows: [[String: Any]] = []
            for project in projects where (project["workspace"] as? [String: Any])?["slug"] as? String == grant.workspaceSlug {
                guard let slug = project["slug"] as? String else { continue }
                var row = project
                if case .ok(let page) = try await api.listProjectRuns(
                    .init(path: .init(project: slug), query: .init(workspace: grant.workspaceSlug, limit: 8)))
                {
                    row["runs"] = try page.body.json.items.map { run -> [String: Any] in
                        var item = try Self.plain(run)
                        let totals = item["totals"] as? [String: Any] ?? [:]
                        let failing = (totals["failed"] as? Int ?? 0) + (totals["broken"] as? Int ?? 0)
                        item["statusClass"] = failing > 0 ? "failed" : "passed"
                        item["symbol"] = failing > 0 ? "✘" : "✔"
                        return item
                    }
                }
                rows.append(row)
            }
            workspaces.append([
                "slug": grant.workspaceSlug, "role": grant.role.rawValue, "projects": rows, "hasProjects": !rows.isEmpty,
                "canAdminister": grant.role.canAdminister,
            ])
        }
        var view: [String: Any] = ["title": "Projects", "workspaces": workspaces]
        if let chosen { view["workspace"] = chosen }
        return ("home", view)
    }

    func runReport(_ runID: String, request: Request, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        guard case .ok(let got) = try await api.getRun(.init(path: .init(runId: runID))) else { throw DomainError.internalError }
        let run = try Self.plain(got.body.json)
        let query = request.uri.queryParameters
        let status = query["status"].flatMap { Components.Schemas.CaseStatus(rawValue: String($0)) }
        let cursor = query["cursor"].map(String.init)
        let totals = run["totals"] as? [String: Any] ?? [:]

        // The regression first: new failures, then still failing, then fixed (the first 100 of each).
        var buckets: [[String: Any]] = []
        for (bucket, label, cls) in [
            (Components.Schemas.RegressionBucket.newFailure, "New failures", "new"),
            (.stillFailing, "Still failing", "still"), (.fixed, "Fixed", "fixed"),
        ] {
            guard case .ok(let page) = try await api.listRunRegression(
                .init(path: .init(runId: runID), query: .init(bucket: bucket, limit: 100)))
            else { continue }
            let items = try page.body.json.items.map { item -> [String: Any] in
                var row = try Self.plain(item)
                row["runId"] = runID
                return row
            }
            let regression = run["regression"] as? [String: Any] ?? [:]
            let count = regression[bucket == .newFailure ? "newFailures" : bucket == .fixed ? "fixed" : "stillFailing"] as? Int ?? items.count
            buckets.append(["label": label, "cls": cls, "count": count, "items": items])
        }

        guard case .ok(let casesPage) = try await api.listRunCases(
            .init(path: .init(runId: runID), query: .init(status: status, cursor: cursor, limit: 100)))
        else { throw DomainError.internalError }
        let page = try casesPage.body.json
        let cases = try page.items.map { item -> [String: Any] in
            var row = try Self.plain(item)
            let status = row["status"] as? String ?? ""
            row["symbol"] = Self.symbols[status] ?? "?"
            row["runId"] = runID
            row["duration"] = Self.duration(row["durationMs"] as? Int)
            row["error"] = (row["error"] as? [String: Any])?["message"].flatMap { ($0 as? String)?.split(separator: "\n").first.map(String.init) }
            return row
        }
        var next: String?
        if let value = page.nextCursor.value as? String {
            var parts = ["cursor=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")]
            if let status { parts.insert("status=" + status.rawValue, at: 0) }
            next = "/runs/\(runID)?" + parts.joined(separator: "&")
        }
        let statuses: [[String: Any]] = [["value": "", "label": "All", "selected": status == nil]]
            + ["failed", "broken", "passed", "skipped"].map { ["value": $0, "label": $0.capitalized, "selected": status?.rawValue == $0] }

        // The totals bar: one SVG rectangle per status, as wide as its count (no inline style: the CSP forbids it).
        var bar: [[String: Any]] = []
        var x = 0
        for (key, label) in [("passed", "passed"), ("failed", "failed"), ("broken", "broken"), ("skipped", "skipped")] {
            if let count = totals[key] as? Int, count > 0 {
                bar.append(["cls": key, "count": count, "label": label, "x": x])
                x += count
            }
        }
        var view: [String: Any] = [
            "title": "\((run["project"] as? [String: Any])?["slug"] as? String ?? "") · \(run["externalRunId"] as? String ?? "")",
            "run": run, "buckets": buckets, "cases": cases, "statuses": statuses, "bar": bar, "barWidth": max(x, 1),
        ]
        if let next { view["next"] = next }
        if let baseline = (run["regression"] as? [String: Any])?["baseline"] as? [String: Any] { view["baseline"] = baseline }
        if let started = run["startedAt"] as? String, let finished = run["finishedAt"] as? String,
            let a = ISO8601DateFormatter().date(from: started), let b = ISO8601DateFormatter().date(from: finished)
        {
            view["duration"] = Self.duration(Int(b.timeIntervalSince(a) * 1000))
        }
        return ("run", view)
    }

    func casePage(_ runID: String, _ caseID: String, identity: Identity, editError: String? = nil) async throws
        -> (template: String, view: [String: Any])
    {
        guard case .ok(let got) = try await api.getRun(.init(path: .init(runId: runID))) else { throw DomainError.internalError }
        let (grant, _, _) = try await api.findRun(identity, id: runID)
        guard case .ok(let detail) = try await api.getRunCase(.init(path: .init(runId: runID, caseId: caseID))) else {
            throw DomainError.internalError
        }
        var view = try Self.plain(detail.body.json)
        let status = view["status"] as? String ?? ""
        view["title"] = view["name"] as? String ?? "Case"
        view["runId"] = runID
        view["externalRunId"] = try got.body.json.externalRunId
        view["symbol"] = Self.symbols[status] ?? "?"
        view["duration"] = Self.duration(view["durationMs"] as? Int)
        if (view["attempts"] as? Int ?? 1) <= 1 { view["attempts"] = nil }
        view["hasAttachments"] = !(view["attachments"] as? [[String: Any]] ?? []).isEmpty
        view["attachments"] = (view["attachments"] as? [[String: Any]] ?? []).map { attachment -> [String: Any] in
            var row = attachment
            let type = (attachment["contentType"] as? String ?? "").lowercased()
            // SVG can carry script: shown only as a download, never inline.
            row["isImage"] = ["image/png", "image/jpeg", "image/gif", "image/webp"].contains(type)
            row["href"] = "/v1/runs/\(runID)/attachments/\(attachment["id"] as? String ?? "")"
            return row
        }
        view["history"] = (view["history"] as? [[String: Any]] ?? []).map { entry -> [String: Any] in
            var row = entry
            row["symbol"] = Self.symbols[entry["status"] as? String ?? ""] ?? "?"
            return row
        }
        // What people say about the case (from the inventory), editable by those who may change data.
        if case .ok(let inventory) = try? await api.getCase(.init(path: .init(caseId: caseID))) {
            let summary = try Self.plain(inventory.body.json)
            view["owner"] = summary["owner"] as? String
            view["labelsText"] = (summary["labels"] as? [String] ?? []).joined(separator: ", ")
        }
        view["canEdit"] = grant.role.canWrite
        view["csrf"] = identity.isSignInSession ? deps.sessions.csrfToken(sessionTokenID: identity.tokenID) : ""
        if let editError { view["editError"] = editError }
        let steps = view["steps"] as? [[String: Any]] ?? []
        view["hasSteps"] = !steps.isEmpty
        view["stepsHTML"] = Self.stepTree(steps)
        return ("case", view)
    }

    /// Steps as nested `<details>` (collapsible without script), every name escaped here.
    static func stepTree(_ steps: [[String: Any]]) -> String {
        var out = "<ul class=\"steps\">"
        for step in steps {
            let status = step["status"] as? String ?? ""
            let children = step["steps"] as? [[String: Any]] ?? []
            let label = "<span class=\"status \(HTML.escape(status))\">\(symbols[status] ?? "?")</span> \(HTML.escape(step["name"] as? String ?? "")) <span class=\"muted\">\(duration(step["durationMs"] as? Int))</span>"
            if children.isEmpty {
                out += "<li>\(label)</li>"
            } else {
                out += "<li><details class=\"step\"\(status == "passed" ? "" : " open")><summary>\(label)</summary>\(stepTree(children))</details></li>"
            }
        }
        return out + "</ul>"
    }
}

/// HTML text escaping for the few fragments built in Swift (templates escape their own values).
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
