import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// The project dashboard: trends, runs, flaky tests, failure clusters, open defects.
extension WebPages {
    func projectPage(_ slug: String, request: Request, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        let query = request.uri.queryParameters
        let workspace = query["workspace"].map(String.init)
        let branch = query["branch"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let window = query["window"].flatMap { Operations.GetProjectAnalytics.Input.Query.WindowPayload(rawValue: String($0)) } ?? ._30d
        let cursor = query["cursor"].map(String.init)

        guard case .ok(let got) = try await api.getProject(.init(path: .init(project: slug), query: .init(workspace: workspace))) else {
            throw DomainError.internalError
        }
        let project = try Self.plain(got.body.json)
        let workspaceSlug = (project["workspace"] as? [String: Any])?["slug"] as? String ?? workspace ?? ""

        async let passRate = api.getProjectAnalytics(
            .init(path: .init(project: slug), query: .init(workspace: workspaceSlug, metric: .passrate, window: window, branch: branch)))
        async let duration = api.getProjectAnalytics(
            .init(path: .init(project: slug), query: .init(workspace: workspaceSlug, metric: .duration, window: window, branch: branch)))
        async let runsPage = api.listProjectRuns(
            .init(path: .init(project: slug), query: .init(workspace: workspaceSlug, branch: branch, cursor: cursor, limit: 20)))
        async let flakyPage = api.listFlakyCases(.init(path: .init(project: slug), query: .init(workspace: workspaceSlug, limit: 10)))
        async let clusterPage = api.listProjectFailureGroups(
            .init(path: .init(project: slug), query: .init(workspace: workspaceSlug, limit: 10)))
        async let failingCases = api.listProjectCases(
            .init(path: .init(project: slug), query: .init(workspace: workspaceSlug, sort: ._hyphen_failures, limit: 200)))
        async let defectPage = api.listDefects(.init(path: .init(project: slug), query: .init(workspace: workspaceSlug, status: .open, limit: 10)))

        var view: [String: Any] = ["title": project["name"] as? String ?? slug, "project": project, "workspace": workspaceSlug,
                                   "branch": branch ?? "", "window": window.rawValue]
        view["windows"] = ["7d", "30d", "90d"].map { ["value": $0, "selected": $0 == window.rawValue] }
        if case .ok(let series) = try await passRate {
            view["passRateChart"] = Self.lineChart(try Self.plain(series.body.json), percent: true)
        }
        if case .ok(let series) = try await duration {
            view["durationChart"] = Self.lineChart(try Self.plain(series.body.json), percent: false)
        }
        if case .ok(let page) = try await runsPage {
            let body = try page.body.json
            view["runs"] = try body.items.map { Self.runRow(try Self.plain($0)) }
            if let next = body.nextCursor.value as? String {
                var parts = ["workspace=" + workspaceSlug, "window=" + window.rawValue, "cursor=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")]
                if let branch { parts.append("branch=" + (branch.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")) }
                view["nextRuns"] = "/projects/\(slug)?" + parts.joined(separator: "&")
            }
        }
        if case .ok(let page) = try await flakyPage {
            let body = try Self.plain(page.body.json)
            view["flaky"] = (body["items"] as? [[String: Any]] ?? []).map { item -> [String: Any] in
                var row = item
                row["scoreText"] = String(format: "%.2f", item["score"] as? Double ?? 0)
                row["evidence"] = Array((item["evidenceRunIds"] as? [String] ?? []).prefix(5))
                return row
            }
        }
        // Suites by failed and broken results, summed over the 200 cases that fail most (the page says so).
        if case .ok(let page) = try await failingCases {
            var suites: [String: (failures: Int, cases: Int)] = [:]
            for item in try page.body.json.items {
                let failures = item.failed + item.broken
                guard failures > 0 else { continue }
                let suite = item.suite ?? "(no suite)"
                suites[suite, default: (0, 0)].failures += failures
                suites[suite, default: (0, 0)].cases += 1
            }
            view["suites"] = suites.sorted { ($0.value.failures, $1.key) > ($1.value.failures, $0.key) }.prefix(8).map {
                ["suite": $0.key, "failures": $0.value.failures, "cases": $0.value.cases]
            }
        }
        if case .ok(let page) = try await clusterPage { view["clusters"] = (try Self.plain(page.body.json))["items"] as? [[String: Any]] ?? [] }
        if case .ok(let page) = try await defectPage { view["defects"] = (try Self.plain(page.body.json))["items"] as? [[String: Any]] ?? [] }
        // A person chooses here what of this project reaches their inbox (workspace tokens have none).
        if identity.userID != nil, deps.inbox != nil,
            case .ok(let got) = try await api.getNotificationPreferences(.init(path: .init(project: slug), query: .init(workspace: workspaceSlug)))
        {
            let chosen = Set(try got.body.json.categories.map(\.rawValue))
            view["notify"] = [
                "csrf": formProof(identity), "isDefault": try got.body.json._default,
                "categories": NotificationCategory.allCases.map { category -> [String: Any] in
                    ["value": category.rawValue, "label": Self.categoryLabels[category] ?? category.rawValue, "checked": chosen.contains(category.rawValue)]
                },
            ]
        }
        return ("project", view)
    }

    /// A daily series as an SVG line chart: axes, the first and last dates, the range, and a hover title
    /// on every point (days without runs are gaps).
    static func lineChart(_ series: [String: Any], percent: Bool, count: Bool = false) -> String {
        let points = series["points"] as? [[String: Any]] ?? []
        let values = points.compactMap { $0["value"] as? Double }
        let (width, height, left, bottom) = (320.0, 120.0, 34.0, 18.0)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(values.count) days with runs\">"
        svg += "<line class=\"axis\" x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\"/>"
        svg += "<line class=\"axis\" x1=\"\(left)\" y1=\"4\" x2=\"\(left)\" y2=\"\(height - bottom)\"/>"
        guard !values.isEmpty, points.count > 0 else {
            return svg + "<text x=\"\(left + 8)\" y=\"\(height / 2)\">no runs in this window</text></svg>"
        }
        let top = percent ? 1.0 : max(values.max() ?? 1, 1)
        let low = percent ? 0.0 : 0.0
        func label(_ value: Double) -> String {
            percent ? "\(Int((value * 100).rounded()))%" : count ? "\(Int(value.rounded()))" : duration(Int(value))
        }
        svg += "<text x=\"2\" y=\"12\">\(HTML.escape(label(top)))</text><text x=\"2\" y=\"\(height - bottom)\">\(HTML.escape(label(low)))</text>"
        let step = (width - left - 6) / Double(max(points.count - 1, 1))
        var segment: [String] = []
        var dots = ""
        var lines = ""
        for (index, point) in points.enumerated() {
            let x = left + 3 + Double(index) * step
            guard let value = point["value"] as? Double else {
                if segment.count > 1 { lines += "<polyline class=\"line\" points=\"\(segment.joined(separator: " "))\"/>" }
                segment = []
                continue
            }
            let y = (height - bottom) - (value - low) / max(top - low, 1e-9) * (height - bottom - 8)
            segment.append(String(format: "%.1f,%.1f", x, y))
            let date = HTML.escape(point["date"] as? String ?? "")
            dots += "<circle class=\"dot\" cx=\(String(format: "\"%.1f\"", x)) cy=\(String(format: "\"%.1f\"", y)) r=\"2.5\"><title>\(date): \(HTML.escape(label(value))) (\(point["runs"] as? Int ?? 0) runs)</title></circle>"
        }
        if segment.count > 1 { lines += "<polyline class=\"line\" points=\"\(segment.joined(separator: " "))\"/>" }
        let first = HTML.escape(points.first?["date"] as? String ?? ""), last = HTML.escape(points.last?["date"] as? String ?? "")
        svg += "<text x=\"\(left)\" y=\"\(height - 4)\">\(first)</text><text x=\"\(width - 60)\" y=\"\(height - 4)\">\(last)</text>"
        return svg + lines + dots + "</svg>"
    }
}
