import Domains
import Foundation

/// Webhooks: every use case is `nonisolated` — each is one transaction on the shard that needs no in-process
/// state (deliveries are written with their events, by whatever stored the event).
extension WorkspaceActor {
    /// How long a rotated-out secret keeps signing deliveries beside the new one, by default: 24 hours.
    public static let defaultSecretGraceSeconds = 86_400

    /// Creates a webhook from settings `WebhookRules.validate` accepted; its signing secret is returned this once.
    public nonisolated func createWebhook(project: Project, settings: WebhookSettings, by actor: AuditActor) async throws
        -> (webhook: WebhookRecord, secret: String)
    {
        let secret = WebhookSignature.newSecret()
        guard
            let created = try await repos.webhooks.create(
                id: ResourceID.make(.webhook), projectID: project.id, settings: settings, secret: secret, by: actor)
        else {
            throw DomainError.conflict(
                "project '\(project.slug)' already has \(WebhookRules.maxPerProject) webhooks; delete one first",
                details: ["limit": .int(WebhookRules.maxPerProject)])
        }
        return (created, secret)
    }

    public nonisolated func webhooks(project: Project) async throws -> [WebhookRecord] {
        try await repos.webhooks.webhooks(projectID: project.id)
    }

    /// The webhook and its project, or nil (404 to the caller).
    public nonisolated func webhookWithProject(id: String) async throws -> (WebhookRecord, Project)? {
        guard let hook = try await repos.webhooks.webhook(id: id), let project = try await project(id: hook.projectID) else { return nil }
        return (hook, project)
    }

    public nonisolated func updateWebhook(_ hook: WebhookRecord, draft: WebhookDraft, allowHTTP: Bool, by actor: AuditActor) async throws
        -> WebhookRecord
    {
        let settings = try WebhookRules.validate(draft, over: hook.settings, allowHTTP: allowHTTP).get()
        guard let updated = try await repos.webhooks.update(id: hook.id, settings: settings, by: actor) else {
            throw DomainError.notFound("webhook '\(hook.id)' not found")
        }
        return updated
    }

    public nonisolated func deleteWebhook(id: String, by actor: AuditActor) async throws {
        guard try await repos.webhooks.delete(id: id, by: actor) else { throw DomainError.notFound("webhook '\(id)' not found") }
    }

    /// A new secret, returned this once; the old one signs beside it for `graceSeconds`.
    public nonisolated func rotateWebhookSecret(id: String, graceSeconds: Int, by actor: AuditActor) async throws
        -> (webhook: WebhookRecord, secret: String)
    {
        let secret = WebhookSignature.newSecret()
        guard let rotated = try await repos.webhooks.rotateSecret(id: id, secret: secret, graceSeconds: graceSeconds, by: actor) else {
            throw DomainError.notFound("webhook '\(id)' not found")
        }
        return (rotated, secret)
    }

    public nonisolated func webhookDeliveries(webhookID: String, before: String?, limit: Int) async throws -> [WebhookDeliveryRecord] {
        try await repos.webhooks.deliveries(webhookID: webhookID, before: before, limit: limit)
    }

    public nonisolated func redeliver(webhookID: String, deliveryID: String) async throws -> WebhookDeliveryRecord {
        guard let delivery = try await repos.webhooks.redeliver(webhookID: webhookID, deliveryID: deliveryID) else {
            throw DomainError.notFound("delivery '\(deliveryID)' not found")
        }
        return delivery
    }

    public nonisolated func pingWebhook(id: String, by actor: AuditActor) async throws -> WebhookDeliveryRecord {
        guard let delivery = try await repos.webhooks.ping(webhookID: id, by: actor) else {
            throw DomainError.notFound("webhook '\(id)' not found")
        }
        return delivery
    }
}
