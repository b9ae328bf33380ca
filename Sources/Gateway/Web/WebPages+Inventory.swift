import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// A case across runs (`/cases/{caseId}`): its history on every branch, pass rate and duration windows,
/// flakiness, and what people say about it — owner, labels, defect links — editable by members through
/// the API's `PATCH /v1/cases/{id}`, plus a new defect filed for it through `POST …/defects`.
extension WebPages {
    func registerInventory<Context: RequestContext>(on router: Router<Context>) {
        router.get("/cases/:caseId") { request, context in
            let caseID = try context.parameters.require("caseId")
            return try await page(request) { identity in try await inventoryCasePage(caseID, identity: identity) }
        }
        router.post("/cases/:caseId/annotate") { request, context in
            try await annotateCase(try context.parameters.require("caseId"), request: request)
        }
        router.post("/cases/:caseId/defects") { request, context in
            try await fileDefect(forCase: try context.parameters.require("caseId"), request: request)
        }
        router.post("/cases/:caseId/quarantine") { request, context in
            try await quarantine(try context.parameters.require("caseId"), request: request)
        }
    }

    /// Quarantines the case with the form's reason, or releases it (`release` set), through the API's operations.
    func quarantine(_ caseID: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        do {
            try await RequestIdentity.$current.withValue(identity) {
                if fields["release"] != nil {
                    _ = try await api.releaseCase(.init(path: .init(caseId: caseID)))
                } else {
                    _ = try await api.quarantineCase(.init(path: .init(caseId: caseID), body: .json(.init(reason: fields["reason"] ?? ""))))
                }
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await page(request) { identity in try await inventoryCasePage(caseID, identity: identity, editError: error.message) }
        }
        return redirect("/cases/\(caseID)#quarantine")
    }

    func inventoryCasePage(_ caseID: String, identity: Identity, editError: String? = nil) async throws
        -> (template: String, view: [String: Any])
    {
        guard case .ok(let got) = try await api.getCase(.init(path: .init(caseId: caseID))) else { throw DomainError.internalError }
        let (grant, project) = try await api.findCase(identity, id: caseID)
        var view = try Self.plain(got.body.json)
        let status = view["lastStatus"] as? String ?? ""
        view["title"] = view["name"] as? String ?? "Case"
        view["workspace"] = grant.workspaceSlug
        view["projectSlug"] = project.slug
        view["symbol"] = Self.symbols[status] ?? "?"
        view["passRateText"] = (view["passRate"] as? Double).map { "\(Int(($0 * 100).rounded())) %" } ?? "–"
        view["avgDuration"] = Self.duration(view["avgDurationMs"] as? Int)
        view["flakyScoreText"] = String(format: "%.2f", view["flakyScore"] as? Double ?? 0)
        view["windows"] = (view["windows"] as? [[String: Any]] ?? []).map { window -> [String: Any] in
            var row = window
            row["passRateText"] = (window["passRate"] as? Double).map { "\(Int(($0 * 100).rounded())) %" } ?? "–"
            row["median"] = (window["medianDurationMs"] as? Double).map { Self.duration(Int($0)) } ?? "–"
            return row
        }
        // The latest results, one strip per branch (the API answers newest first across branches).
        var branches: [String] = []
        var byBranch: [String: [[String: Any]]] = [:]
        for entry in view["recent"] as? [[String: Any]] ?? [] {
            let branch = entry["branch"] as? String ?? ""
            if byBranch[branch] == nil { branches.append(branch) }
            var row = entry
            row["symbol"] = Self.symbols[entry["status"] as? String ?? ""] ?? "?"
            row["duration"] = Self.duration(entry["durationMs"] as? Int)
            byBranch[branch, default: []].append(row)
        }
        view["branches"] = branches.map { ["branch": $0, "results": byBranch[$0] ?? []] }
        view["hasHistory"] = !branches.isEmpty
        view["labelsText"] = (view["labels"] as? [String] ?? []).joined(separator: ", ")
        let linked = Set((view["defects"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        view["hasDefects"] = !linked.isEmpty
        let canEdit = grant.role.canWrite
        view["canEdit"] = canEdit
        if canEdit {
            // Every defect of the project may be linked; the linked ones come checked.
            var choices: [[String: Any]] = []
            if case .ok(let page) = try await api.listDefects(
                .init(path: .init(project: project.slug), query: .init(workspace: grant.workspaceSlug, limit: 100)))
            {
                choices = try page.body.json.items.map { defect in
                    ["id": defect.id, "title": defect.title, "status": defect.status.rawValue, "checked": linked.contains(defect.id)]
                }
            }
            view["defectChoices"] = choices
            view["hasDefectChoices"] = !choices.isEmpty
        }
        view["csrf"] = formProof(identity)
        if let editError { view["editError"] = editError }
        return ("inventory-case", view)
    }

    func annotateCase(_ caseID: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.formFields(request)
        if let refusal = refuseUnprovenForm(fields.first, identity: identity, request: request) { return refusal }
        let labels = (fields.first["labels"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        do {
            _ = try await RequestIdentity.$current.withValue(identity) {
                try await api.updateCase(
                    .init(
                        path: .init(caseId: caseID),
                        body: .json(.init(labels: labels, owner: fields.first["owner"] ?? "", defects: fields.all["defect"] ?? []))))
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await page(request) { identity in try await inventoryCasePage(caseID, identity: identity, editError: error.message) }
        }
        return redirect("/cases/\(caseID)#triage")
    }

    func fileDefect(forCase caseID: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        do {
            try await RequestIdentity.$current.withValue(identity) {
                let (grant, project) = try await api.findCase(identity, id: caseID)
                let url = fields["externalUrl"] ?? ""
                _ = try await api.createDefect(
                    .init(
                        path: .init(project: project.slug), query: .init(workspace: grant.workspaceSlug),
                        body: .json(.init(title: fields["title"] ?? "", externalUrl: url.isEmpty ? nil : url, cases: [caseID]))))
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await page(request) { identity in try await inventoryCasePage(caseID, identity: identity, editError: error.message) }
        }
        return redirect("/cases/\(caseID)#triage")
    }
}
