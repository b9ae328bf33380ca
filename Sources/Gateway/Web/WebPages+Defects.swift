import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// A project's defects and their triage: open, acknowledge, resolve, false positive — the API's
/// `PATCH /v1/defects/{id}` with the visitor's identity, after the form's CSRF proof.
extension WebPages {
    static let defectStatuses: [(value: String, label: String)] = [
        ("open", "Open"), ("acknowledged", "Acknowledged"), ("resolved", "Resolved"), ("false_positive", "False positive"),
    ]

    func defectsPage(_ slug: String, request: Request, identity: Identity, error: String? = nil) async throws
        -> (template: String, view: [String: Any])
    {
        let query = request.uri.queryParameters
        let workspace = query["workspace"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let status = query["status"].flatMap { Components.Schemas.DefectStatus(rawValue: String($0)) }
        let (grant, project) = try await api.resolveProject(identity, slug: slug, workspace: workspace)
        guard case .ok(let page) = try await api.listDefects(
            .init(path: .init(project: slug), query: .init(workspace: grant.workspaceSlug, status: status, limit: 100)))
        else { throw DomainError.internalError }
        let canTriage = grant.role.canWrite
        let csrf = formProof(identity)
        let back = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let defects = try page.body.json.items.map { defect -> [String: Any] in
            var row = try Self.plain(defect)
            let current = row["status"] as? String ?? ""
            row["statusLabel"] = Self.defectStatuses.first { $0.value == current }?.label ?? current
            row["hasCases"] = !(row["cases"] as? [Any] ?? []).isEmpty
            row["hasGroups"] = !(row["failureGroups"] as? [Any] ?? []).isEmpty
            row["canTriage"] = canTriage
            row["csrf"] = csrf
            row["back"] = back
            row["actions"] = Self.defectStatuses.filter { $0.value != current }.map { ["value": $0.value, "label": $0.label] }
            return row
        }
        var view: [String: Any] = [
            "title": "Defects · \(project.slug)", "project": project.slug, "workspace": grant.workspaceSlug, "defects": defects,
            "statuses": [["value": "", "label": "All", "selected": status == nil]]
                + Self.defectStatuses.map { ["value": $0.value, "label": $0.label, "selected": status?.rawValue == $0.value] },
        ]
        if let error { view["error"] = error }
        return ("defects", view)
    }

    func triageDefect(_ defectID: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        guard let status = fields["status"].flatMap(Components.Schemas.DefectStatus.init(rawValue:)) else {
            return errorPage(.badRequest("Not a defect status: choose one of the buttons."), identity: identity)
        }
        do {
            _ = try await RequestIdentity.$current.withValue(identity) {
                try await api.updateDefect(.init(path: .init(defectId: defectID), body: .json(.init(status: status))))
            }
        } catch let error as DomainError {
            return errorPage(error, identity: identity)
        }
        return redirect(Self.safeNext(fields["back"]) + "#" + defectID)
    }
}
