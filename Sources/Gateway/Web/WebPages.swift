import Domains
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import Tenancy

/// Kaizen in the browser: server-rendered pages over the same use cases and access rules as the API.
///
/// Every page calls the API's own operation (`KaizenAPI`) with the visitor's identity, so what a page
/// shows is exactly what the JSON endpoint answers that person — private projects, roles and the
/// cross-tenant 404 included — and renders it with a Mustache template. Every test-supplied string is
/// escaped by the templates (`{{…}}`); the one pre-rendered fragment (the step tree) escapes its own.
/// Pages need no JavaScript.
struct WebPages: Sendable {
    let deps: GatewayDependencies
    let library: MustacheLibrary
    let css: ByteBuffer
    let favicon: ByteBuffer
    let script: ByteBuffer
    /// The API reference's content, rendered once: the document it is made of never changes while we run.
    let docsBody: String
    let docsSummary: String
    let docsTOC: String

    /// No inline script or style at all: the one script is a file of ours, and `connect-src` lets only the API
    /// reference's "try it" call this origin.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static let templates = [
        "header", "footer", "login", "error", "home", "run", "case", "project", "defects", "docs", "docs-body", "link", "inventory-case",
        "flaky", "clusters", "overview", "settings", "audit", "notifications",
    ]

    init(deps: GatewayDependencies) throws {
        self.deps = deps
        guard let templates = Bundle.module.url(forResource: "Templates", withExtension: nil),
            let assets = Bundle.module.url(forResource: "Assets", withExtension: nil)
        else { throw DomainError.internalError }
        var library = MustacheLibrary()
        for name in Self.templates {
            let text = try String(contentsOf: templates.appendingPathComponent(name + ".mustache"), encoding: .utf8)
            try library.register(text, named: name)
        }
        self.library = library
        let docs = Self.docsView(deps.document.json)
        self.docsBody = library.render(docs, withTemplate: "docs-body") ?? ""
        self.docsSummary = docs["description"] as? String ?? ""
        self.docsTOC = (docs["tags"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            .map { "<a href=\"#tag-\(HTML.escape($0))\">\(HTML.escape($0))</a>" }.joined(separator: " ")
        self.css = ByteBuffer(data: try Data(contentsOf: assets.appendingPathComponent("kaizen.css")))
        self.favicon = ByteBuffer(data: try Data(contentsOf: assets.appendingPathComponent("favicon.svg")))
        self.script = ByteBuffer(data: try Data(contentsOf: assets.appendingPathComponent("kaizen.js")))
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/assets/kaizen.css") { _, _ in
            var response = Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"], body: .init(byteBuffer: css))
            response.headers[.cacheControl] = "public, max-age=3600"
            return response
        }
        router.get("/assets/favicon.svg") { _, _ in
            var response = Response(status: .ok, headers: [.contentType: "image/svg+xml"], body: .init(byteBuffer: favicon))
            response.headers[.cacheControl] = "public, max-age=86400"
            return response
        }
        router.get("/assets/kaizen.js") { _, _ in
            var response = Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"], body: .init(byteBuffer: script))
            response.headers[.cacheControl] = "public, max-age=3600"
            return response
        }
        router.get("/login") { request, _ in try await loginPage(request) }
        // The API reference is public, like the document it is made of.
        router.get("/docs") { request, _ in
            let visitor = await identity(request)
            // The server's address is read per request: it is known only once the listener is bound.
            return html(
                "docs",
                ["title": "API reference", "docsBody": docsBody, "description": docsSummary, "toc": docsTOC,
                 "server": deps.ingest.publicURL.value],
                identity: visitor)
        }
        router.post("/login") { request, _ in try await login(request) }
        router.post("/logout") { request, _ in try await logout(request) }
        router.get("/") { request, _ in try await page(request) { identity in try await home(identity, request: request) } }
        router.get("/runs/:runId") { request, context in
            let runID = try context.parameters.require("runId")
            return try await page(request) { identity in try await runReport(runID, request: request, identity: identity) }
        }
        router.get("/projects/:slug") { request, context in
            let slug = try context.parameters.require("slug")
            return try await page(request) { identity in try await projectPage(slug, request: request, identity: identity) }
        }
        router.get("/projects/:slug/defects") { request, context in
            let slug = try context.parameters.require("slug")
            return try await page(request) { identity in try await defectsPage(slug, request: request, identity: identity) }
        }
        router.post("/defects/:defectId/status") { request, context in
            let defectID = try context.parameters.require("defectId")
            return try await triageDefect(defectID, request: request)
        }
        router.post("/runs/:runId/cases/:caseId/annotate") { request, context in
            let runID = try context.parameters.require("runId")
            let caseID = try context.parameters.require("caseId")
            return try await annotate(runID, caseID, request: request)
        }
        router.get("/runs/:runId/cases/:caseId") { request, context in
            let runID = try context.parameters.require("runId")
            let caseID = try context.parameters.require("caseId")
            return try await page(request) { identity in try await casePage(runID, caseID, identity: identity) }
        }
        registerLinks(on: router)
        registerInventory(on: router)
        registerIntelligence(on: router)
        registerSettings(on: router)
        registerNotifications(on: router)
    }

    // MARK: plumbing

    /// The visitor: a bearer token (scripts, curl) or the session cookie.
    func identity(_ request: Request) async -> Identity? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            return try? await deps.authenticator.authenticate(secret: parts[1])
        }
        guard let secret = SessionCookies.secret(in: request.headers) else { return nil }
        return try? await deps.authenticator.authenticate(secret: secret)
    }

    /// Renders a page for a signed-in visitor; an anonymous one is sent to sign in and then back here.
    func page(_ request: Request, _ body: @Sendable (Identity) async throws -> (template: String, view: [String: Any]))
        async throws -> Response
    {
        guard let identity = await identity(request) else {
            let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return redirect("/login?next=" + (here.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"))
        }
        var email: String?
        if identity.isSignInSession, let userID = identity.userID { email = try await deps.accounts.account(id: userID)?.email }
        do {
            var (template, view) = try await RequestIdentity.$current.withValue(identity) { try await body(identity) }
            // The header's inbox link, with the unread count, for people (workspace tokens have no inbox).
            if let userID = identity.userID, let inbox = deps.inbox {
                // No count when none is unread (a Mustache section shows for any number, zero included).
                let unread = (try? await inbox.unreadCount(userID: userID)) ?? 0
                view["inbox"] = unread > 0 ? ["unread": unread] : ["read": true]
            }
            return html(template, view, identity: identity, email: email)
        } catch let error as DomainError {
            return errorPage(error, identity: identity, email: email)
        }
    }

    /// A refusal as a page: 404, 403, or 400 for anything else the operation refused.
    func errorPage(_ error: DomainError, identity: Identity?, email: String? = nil) -> Response {
        let status: HTTPResponse.Status = error.kind == .notFound ? .notFound : error.kind == .forbidden ? .forbidden : .badRequest
        let heading = status == .notFound ? "Not found" : status == .forbidden ? "Refused" : "Not available"
        return html("error", ["title": heading, "heading": heading, "message": error.message], identity: identity, email: email, status: status)
    }

    /// A form that changes something must carry the session's CSRF proof (`csrf`); with `bearerSuffices`, a
    /// bearer token (which a browser never sends by itself) is proof enough. Nil when proven; else the 403.
    func refuseUnprovenForm(_ fields: [String: String], identity: Identity, request: Request, bearerSuffices: Bool = true)
        -> Response?
    {
        let proven = fields["csrf"].map { deps.sessions.verify(csrf: $0, sessionTokenID: identity.tokenID) } ?? false
        if proven || (bearerSuffices && request.headers[.authorization] != nil) { return nil }
        return errorPage(.forbidden("The form was not Kaizen's: it lacks this session's proof."), identity: identity)
    }

    /// The CSRF proof a page's forms carry: a sign-in session's; empty for a bearer token, which needs none.
    func formProof(_ identity: Identity) -> String {
        identity.isSignInSession ? deps.sessions.csrfToken(sessionTokenID: identity.tokenID) : ""
    }

    /// The workspace a project form names: its hidden field, else the action's `?workspace=`.
    static func formWorkspace(_ fields: [String: String], _ request: Request) -> String? {
        (fields["workspace"] ?? request.uri.queryParameters["workspace"].map(String.init)).flatMap { $0.isEmpty ? nil : $0 }
    }

    func html(
        _ template: String, _ view: [String: Any], identity: Identity?, email: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        var view = view
        view["version"] = deps.version
        if let identity, identity.isSignInSession {
            view["user"] = ["email": email ?? "", "csrf": formProof(identity)]
        }
        if let identity { view["nav"] = Self.navigation(identity, current: view["workspace"] as? String) }
        let text = library.render(view, withTemplate: template) ?? ""
        var response = Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        Self.pageHeaders(&response)
        return response
    }

    /// The header's workspace switcher: every workspace the visitor may read, the current one marked, and
    /// settings for those they administer.
    static func navigation(_ identity: Identity, current: String?) -> [String: Any] {
        let current = current.flatMap { slug in identity.grants.contains { $0.workspaceSlug == slug } ? slug : nil }
            ?? (identity.grants.count == 1 ? identity.grants[0].workspaceSlug : nil)
        var nav: [String: Any] = [
            "workspaces": identity.grants.map { grant -> [String: Any] in
                ["slug": grant.workspaceSlug, "role": grant.role.rawValue, "current": grant.workspaceSlug == current,
                 "canAdminister": grant.role.canAdminister]
            },
            "several": identity.grants.count > 1,
        ]
        if let current, let grant = identity.grant(workspaceSlug: current) {
            nav["current"] = current
            nav["currentCanAdminister"] = grant.role.canAdminister
        }
        return nav
    }

    static func pageHeaders(_ response: inout Response) {
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "same-origin"
        response.headers[.cacheControl] = "no-store"
    }

    func redirect(_ location: String, cookie: String? = nil) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location])
        if let cookie { response.headers[.setCookie] = cookie }
        return response
    }

    /// A local path to return to after signing in; anything else (another site, `//host`) goes home.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return "/" }
        return next
    }

    /// A form's fields: the first value of each name, and every value of names that repeat (checkboxes).
    struct FormFields {
        var first: [String: String] = [:]
        var all: [String: [String]] = [:]
    }

    static func form(_ request: Request) async throws -> [String: String] { try await formFields(request).first }

    static func formFields(_ request: Request) async throws -> FormFields {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 * 1024)
        let text = String(buffer: buffer).replacingOccurrences(of: "+", with: "%20")
        var fields = FormFields()
        for item in URLComponents(string: "http://x/?" + text)?.queryItems ?? [] {
            let value = item.value ?? ""
            if fields.first[item.name] == nil { fields.first[item.name] = value }
            fields.all[item.name, default: []].append(value)
        }
        return fields
    }

    /// The JSON the API answers, as the dictionaries templates read.
    static func plain<T: Encodable>(_ value: T) throws -> [String: Any] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return (try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any]) ?? [:]
    }

    var secureCookies: Bool { deps.ingest.publicURL.isHTTPS }

    // MARK: sign-in

    func loginPage(_ request: Request) async throws -> Response {
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        if await identity(request) != nil { return redirect(next) }
        return html("login", ["title": "Sign in", "next": next], identity: nil)
    }

    func login(_ request: Request) async throws -> Response {
        // A sign-in form posted from another site would sign the browser into someone else's account.
        if let origin = request.headers[.origin], !OwnOrigin.matches(origin, publicURL: deps.ingest.publicURL.value) {
            return errorPage(.forbidden("This form must be sent from Kaizen's own pages."), identity: nil)
        }
        let fields = try await Self.form(request)
        let email = fields["email"] ?? ""
        let next = Self.safeNext(fields["next"])
        let address = RequestOrigin.current?.clientAddress
        if let wait = deps.signInThrottle.retryAfter(account: email, address: address) {
            var response = html(
                "login", ["title": "Sign in", "next": next, "email": email, "error": "Too many failed attempts. Try again in \(wait) seconds."],
                identity: nil, status: .tooManyRequests)
            response.headers[.retryAfter] = String(wait)
            return response
        }
        do {
            let signedIn = try await deps.accounts.signIn(email: email, password: fields["password"] ?? "")
            return redirect(
                next,
                cookie: SessionCookies.setCookie(secret: signedIn.secret, maxAgeSeconds: deps.accounts.sessionSeconds, secure: secureCookies))
        } catch let error as DomainError where error.kind == .unauthorized {
            deps.signInThrottle.recordFailure(account: email, address: address)
            return html(
                // 200: the form again, with the reason (the sign-in itself is what failed, not the page).
                "login", ["title": "Sign in", "next": next, "email": email, "error": "The email or password is incorrect."],
                identity: nil)
        }
    }

    /// The case page's owner-and-labels form: the API's `PATCH /v1/cases/{id}` with the visitor's identity
    /// (same rules, same validation), after the form's CSRF proof.
    func annotate(_ runID: String, _ caseID: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        let labels = (fields["labels"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        do {
            _ = try await RequestIdentity.$current.withValue(identity) {
                try await api.updateCase(
                    .init(path: .init(caseId: caseID), body: .json(.init(labels: labels, owner: fields["owner"] ?? ""))))
            }
        } catch let error as DomainError where error.kind == .forbidden || error.kind == .notFound {
            return errorPage(error, identity: identity)
        } catch let error as DomainError {
            return try await page(request) { identity in try await casePage(runID, caseID, identity: identity, editError: error.message) }
        }
        return redirect("/runs/\(runID)/cases/\(caseID)#triage")
    }

    func logout(_ request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request, bearerSuffices: false) { return refusal }
        if identity.isSignInSession { try await deps.accounts.signOut(identity) }
        deps.authenticator.invalidate { $0.tokenID == identity.tokenID }
        return redirect("/login", cookie: SessionCookies.clearCookie(secure: secureCookies))
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
