import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// The pages' content: home (projects and their latest runs), the run report, a case of a run.
extension WebPages {
    var api: KaizenAPI { KaizenAPI(deps: deps) }

    static let symbols = ["passed": "✔", "failed": "✘", "broken": "⚠", "skipped": "○"]

    /// A run in a list: its failing count, and a class and symbol that say pass or fail (never colour alone).
    static func runRow(_ run: [String: Any]) -> [String: Any] {
        var row = run
        let totals = run["totals"] as? [String: Any] ?? [:]
        let failing = (totals["failed"] as? Int ?? 0) + (totals["broken"] as? Int ?? 0)
        row["failing"] = failing
        row["statusClass"] = failing > 0 ? "failed" : "passed"
        row["symbol"] = failing > 0 ? "✘" : "✔"
        return row
    }

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
                    row["runs"] = try page.body.json.items.map { Self.runRow(try Self.plain($0)) }
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
        let suite = query["suite"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let text = query["q"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let cursor = query["cursor"].map(String.init)
        let totals = run["totals"] as? [String: Any] ?? [:]

        var view: [String: Any] = [:]
        // The page's reads, all at once (each is the API's own operation with the visitor's identity).
        func bucketPage(_ bucket: Components.Schemas.RegressionBucket) async throws -> Operations.ListRunRegression.Output {
            try await api.listRunRegression(.init(path: .init(runId: runID), query: .init(bucket: bucket, limit: 100)))
        }
        async let newFailures = bucketPage(.newFailure)
        async let stillFailing = bucketPage(.stillFailing)
        async let fixed = bucketPage(.fixed)
        async let failureGroups = api.listRunFailureGroups(.init(path: .init(runId: runID)))
        async let casesAnswer = api.listRunCases(
            .init(path: .init(runId: runID), query: .init(status: status, suite: suite, q: text, cursor: cursor, limit: 100)))
        let bucketPages = try await [newFailures, stillFailing, fixed]

        // The regression first: new failures, then still failing, then fixed (the first 100 of each).
        var buckets: [[String: Any]] = []
        for (answer, (bucket, label, cls)) in zip(bucketPages, [
            (Components.Schemas.RegressionBucket.newFailure, "New failures", "new"),
            (.stillFailing, "Still failing", "still"), (.fixed, "Fixed", "fixed"),
        ]) {
            guard case .ok(let page) = answer else { continue }
            let items = try page.body.json.items.map { item -> [String: Any] in
                var row = try Self.plain(item)
                row["runId"] = runID
                return row
            }
            let regression = run["regression"] as? [String: Any] ?? [:]
            let count = regression[bucket == .newFailure ? "newFailures" : bucket == .fixed ? "fixed" : "stillFailing"] as? Int ?? items.count
            buckets.append(["label": label, "cls": cls, "count": count, "items": items])
        }

        // Failures grouped by their cluster, with its fingerprint message and whether it is new.
        if case .ok(let groups) = try await failureGroups {
            let all = try groups.body.json
            view["clusters"] = try all.prefix(20).map { group -> [String: Any] in
                var row = try Self.plain(group)
                row["runId"] = runID
                row["isNew"] = group.isNew.value as? Bool ?? false
                // Sections treat any Swift number as true: set counts only when there is something to say.
                if group.count > group.cases.count { row["more"] = group.count - group.cases.count }
                return row
            }
            if all.count > 20 { view["moreClusters"] = all.count - 20 }
        }

        guard case .ok(let casesPage) = try await casesAnswer else { throw DomainError.internalError }
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
            next = Self.nextLink(
                "/runs/\(runID)", cursor: value, keep: [("status", status?.rawValue ?? ""), ("suite", suite ?? ""), ("q", text ?? "")])
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
        view.merge([
            "title": "\((run["project"] as? [String: Any])?["slug"] as? String ?? "") · \(run["externalRunId"] as? String ?? "")",
            "run": run, "buckets": buckets, "cases": cases, "statuses": statuses, "bar": bar, "barWidth": max(x, 1),
            "suite": suite ?? "", "q": text ?? "",
        ]) { $1 }
        if let next { view["next"] = next }
        if let baseline = (run["regression"] as? [String: Any])?["baseline"] as? [String: Any] { view["baseline"] = baseline }
        if let shards = run["shards"] as? [String: Any] {
            view["shards"] = shards
            switch run["status"] as? String {
            case "open": view["openRun"] = shards
            case "partial": view["partialRun"] = shards
            default: break
            }
        }
        // An open run has no verdict yet: no gate section until it closes.
        if run["status"] as? String != "open", let gate = Self.gateView(run["gate"] as? [String: Any]) { view["gate"] = gate }
        if let started = run["startedAt"] as? String, let finished = run["finishedAt"] as? String,
            let a = ISO8601DateFormatter().date(from: started), let b = ISO8601DateFormatter().date(from: finished)
        {
            view["duration"] = Self.duration(Int(b.timeIntervalSince(a) * 1000))
        }
        return ("run", view)
    }

    /// The gate's verdict for the run page; nil when there is nothing to say (no gate, nothing forgiven).
    /// Mustache takes any present value as true, so only the keys that hold are set.
    static func gateView(_ gate: [String: Any]?) -> [String: Any]? {
        guard let gate, let status = gate["status"] as? String else { return nil }
        let forgivenCount = gate["forgivenCount"] as? Int ?? 0
        guard status != "none" || forgivenCount > 0 else { return nil }
        var view: [String: Any] = ["status": status]
        if status == "failed" { view["failed"] = true }
        if status == "passed" { view["passed"] = true }
        view["rules"] = (gate["rules"] as? [[String: Any]] ?? []).map { rule -> [String: Any] in
            var item: [String: Any] = ["rule": rule["rule"] as? String ?? "", "actual": GateVerdict.figure(rule["actual"] as? Double ?? 0)]
            if rule["passed"] as? Bool == true { item["ok"] = true }
            if let limit = rule["limit"] as? Double { item["limit"] = GateVerdict.figure(limit) }
            if let detail = rule["detail"] as? String { item["detail"] = detail }
            return item
        }
        if !(view["rules"] as? [Any] ?? []).isEmpty { view["hasRules"] = true }
        if forgivenCount > 0 {
            view["forgivenCount"] = forgivenCount
            view["forgiven"] = gate["forgiven"] as? [[String: Any]] ?? []
        }
        return view
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
        var attachments: [[String: Any]] = []
        for attachment in view["attachments"] as? [[String: Any]] ?? [] {
            var row = attachment
            let type = (attachment["contentType"] as? String ?? "").lowercased()
            let id = attachment["id"] as? String ?? ""
            // SVG can carry script: shown only as a download, never inline.
            row["isImage"] = ["image/png", "image/jpeg", "image/gif", "image/webp"].contains(type)
            row["href"] = "/v1/runs/\(runID)/attachments/\(id)"
            // Logs and other text: the first bytes shown (escaped by the template), the whole a download away.
            if Self.isPreviewableText(type), let preview = try? await textPreview(runID: runID, attachmentID: id) {
                row["preview"] = preview
                row["previewTruncated"] = (attachment["size"] as? Int ?? 0) > Self.previewBytes
            }
            attachments.append(row)
        }
        view["attachments"] = attachments
        view["previewKB"] = Self.previewBytes / 1024
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
            // The same case's latest results on the other branches, one strip each.
            let branch = try got.body.json.branch
            view["runBranch"] = branch
            var order: [String] = []
            var strips: [String: [[String: Any]]] = [:]
            for entry in summary["recent"] as? [[String: Any]] ?? [] {
                guard let other = entry["branch"] as? String, other != branch else { continue }
                if strips[other] == nil { order.append(other) }
                var row = entry
                row["symbol"] = Self.symbols[entry["status"] as? String ?? ""] ?? "?"
                strips[other, default: []].append(row)
            }
            view["otherBranches"] = order.map { ["branch": $0, "results": strips[$0] ?? []] }
        }
        view["canEdit"] = grant.role.canWrite
        view["csrf"] = formProof(identity)
        if let editError { view["editError"] = editError }
        let steps = view["steps"] as? [[String: Any]] ?? []
        view["hasSteps"] = !steps.isEmpty
        view["stepsHTML"] = Self.stepTree(steps)
        return ("case", view)
    }

    static let previewBytes = 8 * 1024

    static func isPreviewableText(_ contentType: String) -> Bool {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return (type.hasPrefix("text/") && type != "text/html") || ["application/json", "application/x-ndjson", "application/xml"].contains(type)
    }

    /// The first `previewBytes` of a stored attachment, read through the API's own download (nil when the
    /// store answers with a redirect, as S3 does, or the bytes are not UTF-8).
    func textPreview(runID: String, attachmentID: String) async throws -> String? {
        guard case .ok(let ok) = try await api.downloadAttachment(.init(path: .init(runId: runID, attachmentId: attachmentID))),
            case .binary(let body) = ok.body
        else { return nil }
        var bytes: [UInt8] = []
        for try await chunk in body {
            bytes.append(contentsOf: chunk.prefix(Self.previewBytes - bytes.count))
            if bytes.count >= Self.previewBytes { break }
        }
        // A cut may split a character: decode what is whole.
        for cut in 0..<4 where bytes.count >= cut {
            if let text = String(validating: bytes.dropLast(cut), as: UTF8.self) { return text }
        }
        return nil
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
