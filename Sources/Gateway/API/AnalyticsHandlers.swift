import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    func getProjectAnalytics(_ input: Operations.GetProjectAnalytics.Input) async throws -> Operations.GetProjectAnalytics.Output {
        let identity = try RequestIdentity.required()
        let q = input.query
        let metric = AnalyticsMetric(rawValue: q.metric?.rawValue ?? "passrate") ?? .passrate
        let window = AnalyticsWindow(rawValue: q.window?.rawValue ?? "30d") ?? .days30
        if let branch = q.branch, branch.isEmpty || branch.unicodeScalars.count > 255 {
            throw DomainError.invalidParameter("branch", "must be 1–255 characters")
        }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: q.workspace)
        let counts = try await deps.registry.withWorkspace(grant) {
            try await $0.dailyCounts(project: project, days: window.days, branch: q.branch)
        }
        let days = UTCDays.last(window.days)
        return .ok(
            .init(
                body: .json(
                    .init(
                        metric: .init(rawValue: metric.rawValue) ?? .passrate, window: .init(rawValue: window.rawValue) ?? ._30d,
                        branch: q.branch.map { OpenAPIValueContainer(stringLiteral: $0) } ?? nil,
                        from: days.first ?? "", to: days.last ?? "",
                        points: days.map { day in
                            let c = counts[day] ?? DailyCounts()
                            return .init(date: day, value: .number(c.value(metric)), runs: c.runs)
                        }))))
    }

    func listProjectEvents(_ input: Operations.ListProjectEvents.Input) async throws -> Operations.ListProjectEvents.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 50)
        let before = try input.query.cursor.flatMap { try Cursor.decodeID($0) }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let kind = input.query.kind?.rawValue
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.events(project: project, kind: kind, before: before, limit: size + 1)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(id: $0.id) }
        let items = try page.compactMap { event -> Components.Schemas.Event? in
            guard let kind = Components.Schemas.Event.KindPayload(rawValue: event.kind) else { return nil }
            let payload = try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(event.payload.utf8))
            return .init(
                id: event.id, kind: kind, subjectId: event.subjectID, payload: .init(additionalProperties: payload),
                createdAt: event.createdAt)
        }
        return .ok(.init(body: .json(.init(items: items, nextCursor: next))))
    }

    func getOverview(_ input: Operations.GetOverview.Input) async throws -> Operations.GetOverview.Output {
        let identity = try RequestIdentity.required()
        let window = AnalyticsWindow(rawValue: input.query.window?.rawValue ?? "30d") ?? .days30
        let grants = try input.query.workspace.map { [try grant(identity, workspace: $0)] } ?? identity.grants
        let registry = deps.registry

        struct Slice: Sendable {
            var grant: WorkspaceGrant
            var projects: [String: Project] = [:]
            var daily: [String: DailyCounts] = [:]
            var totals: [ProjectWindowTotals] = []
            var recent: [RunRecord] = []
        }
        // Workspaces may live on different servers: ask them concurrently.
        let slices = try await withThrowingTaskGroup(of: Slice.self) { group in
            for grant in grants {
                group.addTask {
                    try await registry.withWorkspace(grant) { workspace in
                        let visible = try await workspace.projects()
                            .filter { $0.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass) }
                        var slice = Slice(grant: grant)
                        slice.projects = Dictionary(uniqueKeysWithValues: visible.map { ($0.id, $0) })
                        let trends = try await workspace.trends(projects: visible, days: window.days)
                        (slice.daily, slice.totals, slice.recent) = (trends.daily, trends.totals, trends.recentRuns)
                        return slice
                    }
                }
            }
            var all: [Slice] = []
            for try await slice in group { all.append(slice) }
            return all.sorted { $0.grant.workspaceSlug < $1.grant.workspaceSlug }
        }

        var daily: [String: DailyCounts] = [:]
        var sum = DailyCounts()
        var ranked: [Components.Schemas.Overview.TopFailingProjectsPayloadPayload] = []
        var failing: [Int] = []
        var recent: [(Date, Components.Schemas.Overview.RecentRunsPayloadPayload)] = []
        for slice in slices {
            let ws = Components.Schemas.WorkspaceRef(id: slice.grant.workspaceID, slug: slice.grant.workspaceSlug)
            for (day, counts) in slice.daily { daily[day, default: DailyCounts()] = daily[day, default: DailyCounts()] + counts }
            for total in slice.totals {
                sum = sum + total.counts
                guard let project = slice.projects[total.projectID], total.counts.failing > 0 else { continue }
                ranked.append(
                    .init(
                        workspace: ws, project: .init(id: project.id, slug: project.slug), name: project.name,
                        failed: total.counts.failing, runs: total.counts.runs, passRate: .number(total.counts.passRate)))
                failing.append(total.counts.failing)
            }
            for run in slice.recent {
                guard let project = slice.projects[run.projectID] else { continue }
                recent.append(
                    (run.createdAt,
                     .init(
                        id: run.id, workspace: ws, project: .init(id: project.id, slug: project.slug), branch: run.branch,
                        totals: .init(run.totals), createdAt: run.createdAt)))
            }
        }
        let top = zip(failing, ranked).sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1.project.slug < $1.1.project.slug) }
            .prefix(5).map(\.1)
        let overview = Components.Schemas.Overview(
            window: .init(rawValue: window.rawValue) ?? ._30d,
            summary: .init(
                workspaces: slices.count, projects: slices.reduce(0) { $0 + $1.projects.count }, runs: sum.runs,
                passed: sum.passed, failed: sum.failing, skipped: sum.skipped, passRate: .number(sum.passRate)),
            dailyTrends: UTCDays.last(window.days).map { day in
                let c = daily[day] ?? DailyCounts()
                return .init(date: day, runs: c.runs, passed: c.passed, failed: c.failing, skipped: c.skipped)
            },
            topFailingProjects: Array(top),
            recentRuns: recent.sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1.id > $1.1.id) }.prefix(10).map(\.1))
        return .ok(.init(body: .json(overview)))
    }
}

/// UTC calendar days as `YYYY-MM-DD`, the keys of the daily roll-ups.
enum UTCDays {
    /// The last `count` days, oldest first, today included.
    static func last(_ count: Int, now: Date = Date()) -> [String] {
        let today = Int((now.timeIntervalSince1970 / 86_400).rounded(.down))
        return (0..<count).reversed().map { format(epochDay: today - $0) }
    }

    static func format(epochDay: Int) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(epochDay) * 86_400)
        return date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
    }
}
