import Domains

/// A person's notifications (seed 004's inbox) and what they choose to receive per project. Everything is
/// in the catalog, keyed by the person: nobody reads or changes another's inbox — a notification of
/// someone else's is "not found", like any id the caller has no right to.
public struct InboxService: Sendable {
    let repository: any NotificationRepository
    /// The notification stream's wake-ups on this node.
    public let live: LiveEventHub

    public init(repository: any NotificationRepository, live: LiveEventHub) {
        self.repository = repository
        self.live = live
    }

    public static let maxPage = 200

    public func notifications(userID: String, query: NotificationQuery) async throws -> [NotificationRecord] {
        try await repository.notifications(userID: userID, query: query)
    }

    public func unreadCount(userID: String) async throws -> Int {
        try await repository.unreadCount(userID: userID)
    }

    public func markRead(userID: String, id: String) async throws {
        guard ResourceID.isValid(id, prefix: .notification), try await repository.markRead(userID: userID, id: id) else {
            throw DomainError.notFound("notification '\(id)' not found")
        }
        live.inboxesChanged(userIDs: [userID])
    }

    /// Returns how many were unread.
    public func markAllRead(userID: String) async throws -> Int {
        let count = try await repository.markAllRead(userID: userID)
        if count > 0 { live.inboxesChanged(userIDs: [userID]) }
        return count
    }

    public func delete(userID: String, id: String) async throws {
        guard ResourceID.isValid(id, prefix: .notification), try await repository.deleteNotification(userID: userID, id: id) else {
            throw DomainError.notFound("notification '\(id)' not found")
        }
    }

    /// What a stream sends next.
    public func notifications(userID: String, after seq: Int64, limit: Int) async throws -> [NotificationRecord] {
        try await repository.notifications(userID: userID, after: seq, limit: limit)
    }

    public func latestSeq(userID: String) async throws -> Int64 {
        try await repository.latestNotificationSeq(userID: userID)
    }

    /// The categories that reach the person from a project, and whether they are the role's defaults.
    public func preferences(userID: String, grant: WorkspaceGrant, project: Project) async throws
        -> (categories: Set<NotificationCategory>, isDefault: Bool)
    {
        if let chosen = try await repository.notificationPreferences(userID: userID, workspaceID: grant.workspaceID, projectID: project.id) {
            return (chosen, false)
        }
        return (NotificationCategory.defaults(for: grant.role), true)
    }

    /// Stores the person's choice for a project (nil: back to the defaults). Unknown names are refused with
    /// their pointer.
    public func setPreferences(userID: String, grant: WorkspaceGrant, project: Project, categories: [String]?) async throws
        -> (categories: Set<NotificationCategory>, isDefault: Bool)
    {
        guard let categories else {
            try await repository.setNotificationPreferences(
                userID: userID, workspaceID: grant.workspaceID, projectID: project.id, categories: nil)
            return (NotificationCategory.defaults(for: grant.role), true)
        }
        var problems: [FieldProblem] = []
        var chosen: Set<NotificationCategory> = []
        for (index, name) in categories.enumerated() {
            if let category = NotificationCategory(rawValue: name) {
                chosen.insert(category)
            } else {
                problems.append(
                    .init(
                        pointer: "/categories/\(index)",
                        message: "must be one of \(NotificationCategory.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
        }
        if categories.count > 32 { problems.append(.init(pointer: "/categories", message: "at most 32 entries")) }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        try await repository.setNotificationPreferences(
            userID: userID, workspaceID: grant.workspaceID, projectID: project.id, categories: chosen)
        return (chosen, false)
    }
}
