import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime

/// The pages one-time links open: `/set-password#kln_…` (from `kaizen user create` / `reset-password`) and
/// `/invitations/accept#kln_…` (an invitation, or the first start's owner set-up link). The secret travels
/// after `#`, so it never reaches a server log; the page's script moves it into the form, and without
/// script the person pastes it. Both post to the API's own operations.
extension WebPages {
    func registerLinks<Context: RequestContext>(on router: Router<Context>) {
        router.get("/set-password") { _, _ in
            html("link", Self.linkView(mode: .password), identity: nil)
        }
        router.post("/set-password") { request, _ in try await setPassword(request) }
        router.get("/invitations/accept") { _, _ in
            html("link", Self.linkView(mode: .invitation), identity: nil)
        }
        router.post("/invitations/accept") { request, _ in try await acceptInvitation(request) }
    }

    enum LinkMode { case password, invitation }

    static func linkView(mode: LinkMode, fields: [String: String] = [:], error: String? = nil) -> [String: Any] {
        var view: [String: Any] = [
            "title": mode == .password ? "Set your password" : "Join a workspace",
            "isInvitation": mode == .invitation,
            "action": mode == .password ? "/set-password" : "/invitations/accept",
            "secret": fields["secret"] ?? "", "email": fields["email"] ?? "", "name": fields["name"] ?? "",
        ]
        if let error { view["error"] = error }
        return view
    }

    /// Refuses a link form posted from another site (it could set someone's password to the sender's choice).
    func refuseForeignOrigin(_ request: Request) -> Response? {
        guard let origin = request.headers[.origin], !OwnOrigin.matches(origin, publicURL: deps.ingest.publicURL.value) else {
            return nil
        }
        return errorPage(.forbidden("This form must be sent from Kaizen's own pages."), identity: nil)
    }

    func setPassword(_ request: Request) async throws -> Response {
        if let refusal = refuseForeignOrigin(request) { return refusal }
        let fields = try await Self.form(request)
        do {
            _ = try await api.redeemPasswordLink(
                .init(body: .json(.init(link: Self.linkSecret(fields["secret"]), password: fields["password"] ?? ""))))
        } catch let error as DomainError {
            return linkRefusal(.password, fields: fields, error: error)
        }
        return html(
            "link", ["title": "Password set", "done": true, "message": "Your password is set. Sign in with it now."], identity: nil)
    }

    func acceptInvitation(_ request: Request) async throws -> Response {
        if let refusal = refuseForeignOrigin(request) { return refusal }
        let fields = try await Self.form(request)
        let accepted: Operations.AcceptInvitation.Output
        do {
            accepted = try await api.acceptInvitation(
                .init(
                    body: .json(
                        .init(
                            invitation: Self.linkSecret(fields["secret"]),
                            email: (fields["email"] ?? "").isEmpty ? nil : fields["email"],
                            password: fields["password"] ?? "",
                            name: (fields["name"] ?? "").isEmpty ? nil : fields["name"]))))
        } catch let error as DomainError {
            return linkRefusal(.invitation, fields: fields, error: error)
        }
        guard case .ok(let ok) = accepted else { throw DomainError.internalError }
        // Signed in by accepting: the API's answer carries the session cookie.
        return redirect("/", cookie: ok.headers.setCookie)
    }

    /// A whole link pasted (`https://…#kln_…`) works as well as its secret.
    static func linkSecret(_ value: String?) -> String {
        let text = (value ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if let hash = text.lastIndex(of: "#") { return String(text[text.index(after: hash)...]) }
        return text
    }

    func linkRefusal(_ mode: LinkMode, fields: [String: String], error: DomainError) -> Response {
        var response = html(
            "link", Self.linkView(mode: mode, fields: fields, error: error.message), identity: nil,
            status: error.kind == .rateLimited ? .tooManyRequests : .unprocessableContent)
        if let wait = error.retryAfter { response.headers[.retryAfter] = String(wait) }
        return response
    }
}
