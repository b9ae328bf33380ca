import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// A project's flaky tests (with the policy, editable by admins) and its failure clusters (with their
/// defects: link a cluster to one or file a new one) — each through the API's own operations.
extension WebPages {
    func registerIntelligence<Context: RequestContext>(on router: Router<Context>) {
        router.get("/projects/:slug/flaky") { request, context in
            let slug = try context.parameters.require("slug")
            return try await page(request) { identity in try await flakyPage(slug, request: request, identity: identity) }
        }
        router.post("/projects/:slug/flaky-policy") { request, context in
            try await setFlakyPolicy(try context.parameters.require("slug"), request: request)
        }
        router.get("/projects/:slug/clusters") { request, context in
            let slug = try context.parameters.require("slug")
            return try await page(request) { identity in try await clustersPage(slug, request: request, identity: identity) }
        }
        router.post("/projects/:slug/clusters/defect") { request, context in
            try await linkCluster(try context.parameters.require("slug"), request: request)
        }
    }

    static func percent(_ value: Double?) -> String { value.map { "\(Int(($0 * 100).rounded())) %" } ?? "–" }

    /// `?cursor=` for the next page, keeping the page's other parameters.
    static func nextLink(_ path: String, cursor: Any?, keep: [(String, String)]) -> String? {
        guard let cursor = cursor as? String else { return nil }
        let parts = (keep + [("cursor", cursor)]).filter { !$0.1.isEmpty }.map {
            $0.0 + "=" + ($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }
        return path + "?" + parts.joined(separator: "&")
    }

    func flakyPage(_ slug: String, request: Request, identity: Identity, policyError: String? = nil) async throws
        -> (template: String, view: [String: Any])
    {
        let query = request.uri.queryParameters
        let workspace = query["workspace"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let (grant, project) = try await api.resolveProject(identity, slug: slug, workspace: workspace)
        guard case .ok(let got) = try await api.listFlakyCases(
            .init(
                path: .init(project: slug),
                query: .init(workspace: grant.workspaceSlug, cursor: query["cursor"].map(String.init), limit: 50)))
        else { throw DomainError.internalError }
        let body = try Self.plain(got.body.json)
        // The policy with who set it and when (the list carries only its fields).
        var policy = body["policy"] as? [String: Any] ?? [:]
        if case .ok(let state) = try await api.getFlakyPolicy(
            .init(path: .init(project: slug), query: .init(workspace: grant.workspaceSlug)))
        {
            policy = try Self.plain(state.body.json)
        }
        var view: [String: Any] = [
            "title": "Flaky · \(project.slug)", "project": project.slug, "workspace": grant.workspaceSlug,
            "policy": policy, "canAdminister": grant.role.canAdminister,
            "csrf": formProof(identity),
        ]
        view["items"] = (body["items"] as? [[String: Any]] ?? []).map { item -> [String: Any] in
            var row = item
            row["scoreText"] = String(format: "%.2f", item["score"] as? Double ?? 0)
            row["symbol"] = Self.symbols[item["lastStatus"] as? String ?? ""] ?? "?"
            row["evidence"] = (item["evidenceRunIds"] as? [String] ?? []).enumerated().map { ["n": $0.offset + 1, "runId": $0.element] }
            return row
        }
        if let next = Self.nextLink(
            "/projects/\(project.slug)/flaky", cursor: body["nextCursor"], keep: [("workspace", grant.workspaceSlug)])
        {
            view["next"] = next
        }
        if let policyError { view["policyError"] = policyError }
        return ("flaky", view)
    }

    func setFlakyPolicy(_ slug: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        let workspace = Self.formWorkspace(fields, request)
        func reshow(_ message: String) async throws -> Response {
            try await page(request) { identity in try await flakyPage(slug, request: request, identity: identity, policyError: message) }
        }
        // A number the browser let through but that is not one: named like the API would.
        var numbers: [String: Double] = [:]
        for name in ["window", "threshold", "minResults", "minFlips", "infraFailureRatio", "infraMinCases"] {
            guard let value = Double((fields[name] ?? "").trimmingCharacters(in: .whitespaces)), value.isFinite else {
                return try await reshow("/\(name): must be a number")
            }
            numbers[name] = value
        }
        func int(_ name: String) -> Int { Int(exactly: numbers[name]!.rounded()) ?? 0 }
        do {
            _ = try await RequestIdentity.$current.withValue(identity) {
                try await api.putFlakyPolicy(
                    .init(
                        path: .init(project: slug), query: .init(workspace: workspace),
                        body: .json(
                            .init(
                                window: int("window"), threshold: numbers["threshold"]!, minResults: int("minResults"),
                                minFlips: int("minFlips"), infraFailureRatio: numbers["infraFailureRatio"]!,
                                infraMinCases: int("infraMinCases")))))
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await reshow(error.message)
        }
        return redirect("/projects/\(slug)/flaky?workspace=\(workspace ?? "")#policy")
    }

    func clustersPage(_ slug: String, request: Request, identity: Identity, error: String? = nil) async throws
        -> (template: String, view: [String: Any])
    {
        let query = request.uri.queryParameters
        let workspace = query["workspace"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let (grant, project) = try await api.resolveProject(identity, slug: slug, workspace: workspace)
        async let clusters = api.listProjectFailureGroups(
            .init(
                path: .init(project: slug),
                query: .init(workspace: grant.workspaceSlug, cursor: query["cursor"].map(String.init), limit: 50)))
        async let latest = api.listProjectRuns(.init(path: .init(project: slug), query: .init(workspace: grant.workspaceSlug, limit: 1)))
        async let defects = api.listDefects(.init(path: .init(project: slug), query: .init(workspace: grant.workspaceSlug, limit: 100)))
        guard case .ok(let got) = try await clusters else { throw DomainError.internalError }
        var latestRunID: String?
        if case .ok(let runs) = try await latest { latestRunID = try runs.body.json.items.first?.id }
        // Which defect each cluster is linked to, and the defects a cluster may be linked to.
        var linked: [String: [[String: Any]]] = [:]
        var choices: [[String: Any]] = []
        if case .ok(let page) = try await defects {
            for defect in try page.body.json.items {
                let ref: [String: Any] = ["id": defect.id, "title": defect.title, "status": defect.status.rawValue]
                for group in defect.failureGroups { linked[group.fingerprint, default: []].append(ref) }
                if defect.status == .open || defect.status == .acknowledged { choices.append(ref) }
            }
        }
        let canTriage = grant.role.canWrite
        let csrf = formProof(identity)
        let body = try Self.plain(got.body.json)
        let items = (body["items"] as? [[String: Any]] ?? []).map { item -> [String: Any] in
            var row = item
            let fingerprint = item["fingerprint"] as? String ?? ""
            row["isNew"] = latestRunID != nil && item["firstSeenRunId"] as? String == latestRunID
            row["defects"] = linked[fingerprint] ?? []
            row["canTriage"] = canTriage
            let open = choices.filter { choice in !(linked[fingerprint] ?? []).contains { $0["id"] as? String == choice["id"] as? String } }
            row["choices"] = open
            row["hasChoices"] = !open.isEmpty
            row["csrf"] = csrf
            row["workspace"] = grant.workspaceSlug
            row["project"] = project.slug
            row["shortFingerprint"] = String(fingerprint.prefix(12))
            return row
        }
        var view: [String: Any] = [
            "title": "Failure clusters · \(project.slug)", "project": project.slug, "workspace": grant.workspaceSlug, "items": items,
        ]
        if let next = Self.nextLink(
            "/projects/\(project.slug)/clusters", cursor: body["nextCursor"], keep: [("workspace", grant.workspaceSlug)])
        {
            view["next"] = next
        }
        if let error { view["error"] = error }
        return ("clusters", view)
    }

    /// Links a cluster to an existing defect (its fingerprints plus this one) or files a new defect for it.
    func linkCluster(_ slug: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        let workspace = Self.formWorkspace(fields, request)
        let fingerprint = fields["fingerprint"] ?? ""
        do {
            try await RequestIdentity.$current.withValue(identity) {
                if let defectID = fields["defect"], !defectID.isEmpty {
                    guard case .ok(let got) = try await api.getDefect(.init(path: .init(defectId: defectID))) else {
                        throw DomainError.internalError
                    }
                    let current = try got.body.json.failureGroups.map(\.fingerprint)
                    _ = try await api.updateDefect(
                        .init(path: .init(defectId: defectID), body: .json(.init(failureGroups: current + [fingerprint]))))
                } else {
                    let url = fields["externalUrl"] ?? ""
                    _ = try await api.createDefect(
                        .init(
                            path: .init(project: slug), query: .init(workspace: workspace),
                            body: .json(.init(title: fields["title"] ?? "", externalUrl: url.isEmpty ? nil : url, failureGroups: [fingerprint]))))
                }
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await page(request) { identity in try await clustersPage(slug, request: request, identity: identity, error: error.message) }
        }
        return redirect("/projects/\(slug)/clusters?workspace=\(workspace ?? "")#c-\(fingerprint.prefix(12))")
    }
}
