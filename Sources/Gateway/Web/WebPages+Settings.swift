import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// Workspace settings for admins: tokens (a new secret is shown once, on the answer to its form), members
/// and their roles, invitations (the link shown once), and the audit log — the API's operations with the
/// visitor's identity, so its rules (role ceilings, the last owner, admins only) hold here unchanged.
extension WebPages {
    func registerSettings<Context: RequestContext>(on router: Router<Context>) {
        router.get("/overview") { request, _ in
            try await page(request) { identity in try await overviewPage(request: request, identity: identity) }
        }
        router.get("/workspaces/:ws/settings") { request, context in
            let ws = try context.parameters.require("ws")
            return try await page(request) { identity in try await settingsPage(ws, identity: identity) }
        }
        router.get("/workspaces/:ws/audit") { request, context in
            let ws = try context.parameters.require("ws")
            return try await page(request) { identity in try await auditPage(ws, request: request, identity: identity) }
        }
        router.post("/workspaces/:ws/tokens") { request, context in
            let ws = try context.parameters.require("ws")
            return try await settingsAction(ws, request: request) { fields, _ in
                let name = fields["name"] ?? ""
                let tokenClass = Components.Schemas.TokenClass(rawValue: fields["class"] ?? "") ?? .workspace
                let role = Components.Schemas.Role(rawValue: fields["role"] ?? "")
                let email = (fields["email"] ?? "").trimmingCharacters(in: .whitespaces)
                let days = (fields["days"] ?? "").trimmingCharacters(in: .whitespaces)
                var ttl: Int?
                if !days.isEmpty {
                    guard let count = Double(days), count.isFinite, count > 0, count <= 730 else {
                        throw DomainError.validation(pointer: "/ttlSeconds", "the lifetime must be 1 to 730 days")
                    }
                    ttl = Int(count * 86_400)
                }
                guard case .created(let created) = try await api.createToken(
                    .init(
                        path: .init(workspace: ws),
                        body: .json(
                            .init(
                                name: name, _class: tokenClass, role: role,
                                user: tokenClass == .user ? .init(email: email) : nil, ttlSeconds: ttl))))
                else { throw DomainError.internalError }
                let token = try created.body.json
                return ShownOnce(
                    what: "Token “\(token.value1.name)”", secret: token.value2.secret,
                    hint: "Copy it now: only its hash is kept, it is not shown again.")
            }
        }
        router.post("/workspaces/:ws/tokens/:id/revoke") { request, context in
            let (ws, id) = (try context.parameters.require("ws"), try context.parameters.require("id"))
            return try await settingsAction(ws, request: request) { _, _ in
                _ = try await api.revokeToken(.init(path: .init(workspace: ws, tokenId: id), query: .init(action: .revoke)))
                return nil
            }
        }
        router.post("/workspaces/:ws/members/:userId") { request, context in
            let (ws, userID) = (try context.parameters.require("ws"), try context.parameters.require("userId"))
            return try await settingsAction(ws, request: request) { fields, _ in
                guard let role = Components.Schemas.Role(rawValue: fields["role"] ?? "") else {
                    throw DomainError.validation(pointer: "/role", "choose a role")
                }
                _ = try await api.updateMember(.init(path: .init(workspace: ws, userId: userID), body: .json(.init(role: role))))
                return nil
            }
        }
        router.post("/workspaces/:ws/members/:userId/remove") { request, context in
            let (ws, userID) = (try context.parameters.require("ws"), try context.parameters.require("userId"))
            return try await settingsAction(ws, request: request) { _, _ in
                _ = try await api.removeMember(.init(path: .init(workspace: ws, userId: userID)))
                return nil
            }
        }
        router.post("/workspaces/:ws/invitations") { request, context in
            let ws = try context.parameters.require("ws")
            return try await settingsAction(ws, request: request) { fields, _ in
                guard let role = Components.Schemas.Role(rawValue: fields["role"] ?? "") else {
                    throw DomainError.validation(pointer: "/role", "choose a role")
                }
                guard case .created(let created) = try await api.createInvitation(
                    .init(path: .init(workspace: ws), body: .json(.init(email: fields["email"] ?? "", role: role))))
                else { throw DomainError.internalError }
                let invitation = try created.body.json
                return ShownOnce(
                    what: "Invitation for \(invitation.value1.email)", secret: invitation.value2.link,
                    hint: "Send this link to them: it is not shown again, and works once.")
            }
        }
        router.post("/workspaces/:ws/invitations/:id/revoke") { request, context in
            let (ws, id) = (try context.parameters.require("ws"), try context.parameters.require("id"))
            return try await settingsAction(ws, request: request) { _, _ in
                _ = try await api.revokeInvitation(.init(path: .init(workspace: ws, invitationId: id)))
                return nil
            }
        }
    }

    /// A secret the settings page shows on the answer to the form that made it, and never again.
    struct ShownOnce: Sendable {
        var what: String
        var secret: String
        var hint: String
    }

    /// Runs one settings form: CSRF proof, then the operation; the settings page again with what it made
    /// (a secret shown once) or the reason it was refused.
    func settingsAction(
        _ ws: String, request: Request,
        _ action: @Sendable @escaping ([String: String], Identity) async throws -> ShownOnce?
    ) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        var outcome: ShownOnce?
        var failure: DomainError?
        do {
            outcome = try await RequestIdentity.$current.withValue(identity) { try await action(fields, identity) }
        } catch let error as DomainError where error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            failure = error
        }
        if failure == nil && outcome == nil { return redirect("/workspaces/\(ws)/settings") }
        let shown = outcome
        let reason = failure?.message
        var response = try await page(request) { identity in
            var (template, view) = try await settingsPage(ws, identity: identity)
            if let shown { view["created"] = ["what": shown.what, "secret": shown.secret, "hint": shown.hint] }
            if let reason { view["error"] = reason }
            return (template, view)
        }
        if let failure {
            response.status = failure.kind == .forbidden ? .forbidden : failure.kind == .conflict ? .conflict : .unprocessableContent
        }
        return response
    }

    func settingsPage(_ ws: String, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        let grant = try api.grant(identity, workspace: ws)
        guard grant.role.canAdminister else {
            throw DomainError.forbidden("Workspace settings are for its admins; your role here is \(grant.role.rawValue).")
        }
        async let tokens = api.listTokens(.init(path: .init(workspace: ws)))
        async let members = api.listMembers(.init(path: .init(workspace: ws)))
        async let invitations = api.listInvitations(.init(path: .init(workspace: ws)))
        let csrf = formProof(identity)
        // Roles the visitor may hand out: never above their own.
        let grantable = Role.allCases.filter { $0 <= grant.role }.sorted(by: >).map(\.rawValue)
        var view: [String: Any] = ["title": "Settings · \(ws)", "workspace": ws, "csrf": csrf]
        view["roles"] = grantable.map { ["value": $0, "selected": $0 == "member"] }
        if case .ok(let got) = try await tokens {
            view["tokens"] = try got.body.json.map { token -> [String: Any] in
                var row = try Self.plain(token)
                row["active"] = token.revokedAt == nil
                return row
            }
        }
        if case .ok(let got) = try await members {
            view["members"] = try got.body.json.map { member -> [String: Any] in
                var row = try Self.plain(member)
                let current = member.role.rawValue
                row["roles"] = grantable.map { ["value": $0, "selected": $0 == current] }
                row["isSelf"] = member.user.id == identity.userID
                return row
            }
        }
        if case .ok(let got) = try await invitations {
            view["invitations"] = try got.body.json.map { invitation -> [String: Any] in
                var row = try Self.plain(invitation)
                row["pending"] = invitation.state == .pending
                return row
            }
        }
        return ("settings", view)
    }

    func auditPage(_ ws: String, request: Request, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        let query = request.uri.queryParameters
        func given(_ name: String) -> String? { query[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        guard case .ok(let got) = try await api.listAuditEvents(
            .init(
                path: .init(workspace: ws),
                query: .init(actor: given("actor"), action: given("action"), cursor: given("cursor"), limit: 50)))
        else { throw DomainError.internalError }
        let body = try Self.plain(got.body.json)
        var view: [String: Any] = ["title": "Audit log · \(ws)", "workspace": ws]
        // Set only when given: an empty string would still open a template section.
        if let actor = given("actor") { view["actor"] = actor }
        if let action = given("action") { view["action"] = action }
        view["events"] = (body["items"] as? [[String: Any]] ?? []).map { event -> [String: Any] in
            var row = event
            if let details = event["details"], !(details is NSNull),
                let data = try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys, .fragmentsAllowed]),
                let text = String(data: data, encoding: .utf8), text != "{}", text != "null"
            {
                row["detailsText"] = text
            }
            return row
        }
        if let next = Self.nextLink(
            "/workspaces/\(ws)/audit", cursor: body["nextCursor"], keep: [("actor", given("actor") ?? ""), ("action", given("action") ?? "")])
        {
            view["next"] = next
        }
        return ("audit", view)
    }
}
