import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// Across the person's workspaces (seed 004 "Overview"): totals, daily trends, the projects failing most,
/// the newest runs — `GET /v1/overview` rendered.
extension WebPages {
    func overviewPage(request: Request, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        let query = request.uri.queryParameters
        let workspace = query["workspace"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let window = query["window"].flatMap { Operations.GetOverview.Input.Query.WindowPayload(rawValue: String($0)) } ?? ._30d
        guard case .ok(let got) = try await api.getOverview(.init(query: .init(workspace: workspace, window: window))) else {
            throw DomainError.internalError
        }
        var view = try Self.plain(got.body.json)
        view["title"] = "Overview"
        if let workspace {
            view["workspace"] = workspace
            view["scope"] = workspace
        }
        view["windows"] = ["7d", "30d", "90d"].map { ["value": $0, "selected": $0 == window.rawValue] }
        let summary = view["summary"] as? [String: Any] ?? [:]
        view["passRateText"] = Self.percent(summary["passRate"] as? Double)
        let days = view["dailyTrends"] as? [[String: Any]] ?? []
        let passRates = days.map { day -> [String: Any] in
            let passed = day["passed"] as? Int ?? 0, failed = day["failed"] as? Int ?? 0
            var point: [String: Any] = ["date": day["date"] as? String ?? "", "runs": day["runs"] as? Int ?? 0]
            if passed + failed > 0 { point["value"] = Double(passed) / Double(passed + failed) }
            return point
        }
        let failures = days.map { day -> [String: Any] in
            var point: [String: Any] = ["date": day["date"] as? String ?? "", "runs": day["runs"] as? Int ?? 0]
            if (day["runs"] as? Int ?? 0) > 0 { point["value"] = Double(day["failed"] as? Int ?? 0) }
            return point
        }
        view["passRateChart"] = Self.lineChart(["points": passRates], percent: true)
        view["failuresChart"] = Self.lineChart(["points": failures], percent: false, count: true)
        view["topFailingProjects"] = (view["topFailingProjects"] as? [[String: Any]] ?? []).map { row -> [String: Any] in
            var row = row
            row["passRateText"] = Self.percent(row["passRate"] as? Double)
            return row
        }
        view["recentRuns"] = (view["recentRuns"] as? [[String: Any]] ?? []).map(Self.runRow)
        return ("overview", view)
    }
}
