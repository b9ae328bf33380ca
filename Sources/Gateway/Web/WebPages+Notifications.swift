import Domains
import Foundation
import Hummingbird
import OpenAPIRuntime
import Tenancy

/// `/notifications`: the signed-in person's inbox, newest first, with forms to mark one or all read (they work
/// without JavaScript; every text is escaped by the template).
extension WebPages {
    func registerNotifications<Context: RequestContext>(on router: Router<Context>) {
        router.get("/notifications") { request, _ in
            try await page(request) { identity in try await inboxPage(request: request, identity: identity) }
        }
        router.post("/notifications/read") { request, _ in
            try await inboxAction(request) { inbox, userID in _ = try await inbox.markAllRead(userID: userID) }
        }
        router.post("/projects/:slug/notifications") { request, context in
            try await setNotificationChoice(try context.parameters.require("slug"), request: request)
        }
        router.post("/notifications/:id/read") { request, context in
            let id = try context.parameters.require("id")
            return try await inboxAction(request) { inbox, userID in try await inbox.markRead(userID: userID, id: id) }
        }
    }

    static let inboxPageSize = 50

    static let categoryLabels: [NotificationCategory: String] = [
        .newFailures: "New failures on the default branch", .gateFailed: "Quality gate failed", .flakyDetected: "Cases became flaky",
        .defectOpened: "Defects opened", .webhookDisabled: "A webhook was disabled",
    ]

    /// The project page's form: the boxes ticked are what reaches the person from now on (none ticked mutes).
    func setNotificationChoice(_ slug: String, request: Request) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login") }
        let fields = try await Self.formFields(request)
        if let refusal = refuseUnprovenForm(fields.first, identity: identity, request: request) { return refusal }
        let workspace = Self.formWorkspace(fields.first, request)
        do {
            _ = try await RequestIdentity.$current.withValue(identity) {
                try await api.putNotificationPreferences(
                    .init(
                        path: .init(project: slug), query: .init(workspace: workspace),
                        body: .json(.init(categories: OpenAPIValueContainer(unvalidatedValue: fields.all["category"] ?? [])))))
            }
        } catch let error as DomainError {
            return errorPage(error, identity: identity)
        }
        let back = "/projects/\(slug.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? slug)"
        return redirect(back + (workspace.map { "?workspace=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") } ?? "") + "#notify")
    }

    func inboxPage(request: Request, identity: Identity) async throws -> (template: String, view: [String: Any]) {
        guard let userID = identity.userID else {
            throw DomainError.forbidden("Notifications belong to people; this is a workspace token.")
        }
        guard let inbox = deps.inbox else { throw DomainError.unavailable("notifications are not served by this process") }
        let unreadOnly = request.uri.queryParameters["unread"] == "true"
        let before = request.uri.queryParameters["before"].flatMap { StreamPosition.parse(String($0)) }
        let rows = try await inbox.notifications(
            userID: userID, query: NotificationQuery(unreadOnly: unreadOnly, before: before, limit: Self.inboxPageSize + 1))
        let page = rows.prefix(Self.inboxPageSize)
        var view: [String: Any] = [
            "title": "Notifications",
            "unreadOnly": unreadOnly,
            "items": page.map { row -> [String: Any] in
                var item: [String: Any] = [
                    "id": row.id, "title": row.title, "body": row.body, "category": row.category.rawValue.replacingOccurrences(of: "_", with: " "),
                    "severity": row.severity.rawValue, "workspace": row.workspaceSlug, "at": row.createdAt.formatted(.iso8601),
                    "unread": !row.read,
                ]
                if let project = row.projectSlug { item["project"] = project }
                // Only local links: the url is Kaizen's own page.
                if let url = row.url, url.hasPrefix("/"), !url.hasPrefix("//") { item["url"] = url }
                return item
            },
            "csrf": formProof(identity),
        ]
        // Absent rather than 0: a Mustache section shows for any number, zero included.
        let unread = try await inbox.unreadCount(userID: userID)
        if unread > 0 { view["unread"] = unread }
        if rows.count > Self.inboxPageSize, let last = page.last {
            view["next"] = "/notifications?before=\(last.seq)" + (unreadOnly ? "&unread=true" : "")
        }
        return ("notifications", view)
    }

    func inboxAction(_ request: Request, _ action: @Sendable (InboxService, String) async throws -> Void) async throws -> Response {
        guard let identity = await identity(request) else { return redirect("/login?next=%2Fnotifications") }
        let fields = try await Self.form(request)
        if let refusal = refuseUnprovenForm(fields, identity: identity, request: request) { return refusal }
        guard let userID = identity.userID, let inbox = deps.inbox else {
            return errorPage(.forbidden("Notifications belong to people; this is a workspace token."), identity: identity)
        }
        do {
            try await action(inbox, userID)
        } catch let error as DomainError {
            return errorPage(error, identity: identity)
        }
        return redirect("/notifications" + (fields["unread"] == "true" ? "?unread=true" : ""))
    }
}
