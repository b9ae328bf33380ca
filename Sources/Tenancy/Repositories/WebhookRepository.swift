import Domains
import Foundation

/// A workspace's webhooks and their deliveries.
public protocol WebhookRepository: Sendable {
    /// Creates a webhook with `secret`; nil when the project already has `WebhookRules.maxPerProject`.
    func create(id: String, projectID: String, settings: WebhookSettings, secret: String, by actor: AuditActor) async throws
        -> WebhookRecord?
    func webhooks(projectID: String) async throws -> [WebhookRecord]
    func webhook(id: String) async throws -> WebhookRecord?
    /// Nil when there is no such webhook. Re-enabling clears what disabled it.
    func update(id: String, settings: WebhookSettings, by actor: AuditActor) async throws -> WebhookRecord?
    func delete(id: String, by actor: AuditActor) async throws -> Bool
    /// A new secret; the current one keeps signing (beside it) for `graceSeconds`.
    func rotateSecret(id: String, secret: String, graceSeconds: Int, by actor: AuditActor) async throws -> WebhookRecord?
    /// Newest first, before the delivery `before` when given.
    func deliveries(webhookID: String, before: String?, limit: Int) async throws -> [WebhookDeliveryRecord]
    /// Sends a delivery again (pending now, its attempts kept); nil when the webhook has no such delivery.
    func redeliver(webhookID: String, deliveryID: String) async throws -> WebhookDeliveryRecord?
    /// Records a `webhook.ping` event and its one delivery, to this webhook only.
    func ping(webhookID: String, by actor: AuditActor) async throws -> WebhookDeliveryRecord?
}
