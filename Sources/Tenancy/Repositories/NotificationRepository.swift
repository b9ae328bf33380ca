import Domains

/// People's inboxes and what they chose to receive, in the catalog.
public protocol NotificationRepository: Sendable {
    /// The person's notifications, newest first.
    func notifications(userID: String, query: NotificationQuery) async throws -> [NotificationRecord]
    /// Their notifications after `seq`, oldest first (what a stream sends next).
    func notifications(userID: String, after seq: Int64, limit: Int) async throws -> [NotificationRecord]
    /// The highest seq of their notifications (0 when none): where a stream without `Last-Event-ID` starts.
    func latestNotificationSeq(userID: String) async throws -> Int64
    func unreadCount(userID: String) async throws -> Int
    /// False when the person has no such notification.
    func markRead(userID: String, id: String) async throws -> Bool
    /// How many were unread.
    func markAllRead(userID: String) async throws -> Int
    func deleteNotification(userID: String, id: String) async throws -> Bool
    /// The categories the person chose for a project; nil when they never chose (their role's defaults apply).
    func notificationPreferences(userID: String, workspaceID: String, projectID: String) async throws -> Set<NotificationCategory>?
    /// Stores a choice; nil goes back to the role's defaults.
    func setNotificationPreferences(
        userID: String, workspaceID: String, projectID: String, categories: Set<NotificationCategory>?
    ) async throws
}
