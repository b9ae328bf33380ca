import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

/// A person's inbox (seed 004) and what reaches it.
extension KaizenAPI {
    /// The caller's user id: notifications belong to people, and a workspace token is none.
    func personalInbox() throws -> String { try personalIdentity().userID }

    /// The caller and their user id (403 for a workspace token).
    func personalIdentity() throws -> (identity: Identity, userID: String) {
        let identity = try RequestIdentity.required()
        guard let userID = identity.userID else {
            throw DomainError.forbidden("notifications belong to people; this is a workspace token (sign in, or use a user token)")
        }
        return (identity, userID)
    }

    func inboxService() throws -> InboxService {
        guard let inbox = deps.inbox else { throw DomainError.unavailable("notifications are not served by this process") }
        return inbox
    }

    func listNotifications(_ input: Operations.ListNotifications.Input) async throws -> Operations.ListNotifications.Output {
        let userID = try personalInbox()
        let size = input.query.limit ?? 50
        guard (1...InboxService.maxPage).contains(size) else { throw DomainError.invalidParameter("limit", "must be 1–\(InboxService.maxPage)") }
        let before = try input.query.cursor.flatMap { try Cursor.decodeNumber($0) }
        let rows = try await inboxService().notifications(
            userID: userID, query: NotificationQuery(unreadOnly: input.query.unread ?? false, before: before, limit: size + 1))
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode($0.seq) }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.Notification.init), nextCursor: next))))
    }

    func getUnreadNotificationCount(_ input: Operations.GetUnreadNotificationCount.Input) async throws
        -> Operations.GetUnreadNotificationCount.Output
    {
        let userID = try personalInbox()
        return .ok(.init(body: .json(.init(unread: try await inboxService().unreadCount(userID: userID)))))
    }

    func markAllNotificationsRead(_ input: Operations.MarkAllNotificationsRead.Input) async throws
        -> Operations.MarkAllNotificationsRead.Output
    {
        let userID = try personalInbox()
        return .ok(.init(body: .json(.init(marked: try await inboxService().markAllRead(userID: userID)))))
    }

    func markNotificationRead(_ input: Operations.MarkNotificationRead.Input) async throws -> Operations.MarkNotificationRead.Output {
        let userID = try personalInbox()
        try await inboxService().markRead(userID: userID, id: input.path.notificationId)
        return .noContent(.init())
    }

    func deleteNotification(_ input: Operations.DeleteNotification.Input) async throws -> Operations.DeleteNotification.Output {
        let userID = try personalInbox()
        try await inboxService().delete(userID: userID, id: input.path.notificationId)
        return .noContent(.init())
    }

    func getNotificationPreferences(_ input: Operations.GetNotificationPreferences.Input) async throws
        -> Operations.GetNotificationPreferences.Output
    {
        let (identity, userID) = try personalIdentity()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let (categories, isDefault) = try await inboxService().preferences(userID: userID, grant: grant, project: project)
        return .ok(.init(body: .json(.init(project: project.slug, categories: categories, isDefault: isDefault))))
    }

    func putNotificationPreferences(_ input: Operations.PutNotificationPreferences.Input) async throws
        -> Operations.PutNotificationPreferences.Output
    {
        let (identity, userID) = try personalIdentity()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let categories: [String]?
        switch body.categories.value {
        case nil: categories = nil
        case let list as [Any]:
            categories = try list.enumerated().map { index, item in
                guard let name = item as? String else {
                    throw DomainError.validation(pointer: "/categories/\(index)", "must be a string")
                }
                return name
            }
        default: throw DomainError.validation(pointer: "/categories", "must be an array of category names, or null")
        }
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        let (chosen, isDefault) = try await inboxService().setPreferences(userID: userID, grant: grant, project: project, categories: categories)
        return .ok(.init(body: .json(.init(project: project.slug, categories: chosen, isDefault: isDefault))))
    }
}

extension Components.Schemas.NotificationPreferences {
    init(project: String, categories: Set<NotificationCategory>, isDefault: Bool) {
        self.init(
            project: project,
            categories: categories.map(\.rawValue).sorted().compactMap(Components.Schemas.NotificationCategory.init(rawValue:)),
            _default: isDefault)
    }
}

extension Components.Schemas.Notification {
    init(_ record: NotificationRecord) {
        let payload = (try? JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(record.payload.utf8))) ?? OpenAPIObjectContainer()
        self.init(
            id: record.id, seq: record.seq, workspace: record.workspaceSlug,
            project: record.projectSlug.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null,
            category: Components.Schemas.NotificationCategory(rawValue: record.category.rawValue) ?? .newFailures,
            severity: .init(rawValue: record.severity.rawValue) ?? .info, title: record.title, body: record.body,
            url: record.url.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null, payload: .init(additionalProperties: payload),
            read: record.read, createdAt: record.createdAt)
    }
}
