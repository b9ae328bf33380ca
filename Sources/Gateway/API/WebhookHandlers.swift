import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

/// Webhooks (admins only: they send a project's events off-site).
extension KaizenAPI {
    func listWebhooks(_ input: Operations.ListWebhooks.Input) async throws -> Operations.ListWebhooks.Output {
        let identity = try RequestIdentity.required()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireAdmin(grant)
        let hooks = try await deps.registry.withWorkspace(grant) { try await $0.webhooks(project: project) }
        return .ok(.init(body: .json(hooks.map { .init($0, project: project) })))
    }

    func createWebhook(_ input: Operations.CreateWebhook.Input) async throws -> Operations.CreateWebhook.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let draft = WebhookDraft(url: body.url, events: body.events, format: body.format, description: body.description, active: body.active)
        // Validated before any lookup, so a bad body is a 422 whatever the project.
        let settings = try WebhookRules.validate(draft, over: nil, allowHTTP: deps.webhooks.allowHTTP).get()
        let (grant, project) = try await resolveProject(identity, slug: input.path.project, workspace: input.query.workspace)
        try requireAdmin(grant)
        let (hook, secret) = try await deps.registry.withWorkspace(grant) {
            try await $0.createWebhook(project: project, settings: settings, by: RequestOrigin.actor(identity))
        }
        return .created(.init(body: .json(.init(webhook: .init(hook, project: project), secret: secret))))
    }

    /// The webhook in one of the caller's workspaces where the caller is an admin; 404 otherwise (another
    /// tenant's id, or a project the caller cannot see), 403 for a reader without the admin role.
    func findWebhook(_ identity: Identity, id: String) async throws -> (WorkspaceGrant, WebhookRecord, Project) {
        guard ResourceID.isValid(id, prefix: .webhook) else { throw DomainError.notFound("webhook '\(id)' not found") }
        for grant in identity.grants {
            let found = try await deps.registry.withWorkspace(grant) { try await $0.webhookWithProject(id: id) }
            if let (hook, project) = found, project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass) {
                try requireAdmin(grant)
                return (grant, hook, project)
            }
        }
        throw DomainError.notFound("webhook '\(id)' not found")
    }

    func getWebhook(_ input: Operations.GetWebhook.Input) async throws -> Operations.GetWebhook.Output {
        let (_, hook, project) = try await findWebhook(try RequestIdentity.required(), id: input.path.webhookId)
        return .ok(.init(body: .json(.init(hook, project: project))))
    }

    func updateWebhook(_ input: Operations.UpdateWebhook.Input) async throws -> Operations.UpdateWebhook.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let draft = WebhookDraft(url: body.url, events: body.events, format: body.format, description: body.description, active: body.active)
        let (grant, hook, project) = try await findWebhook(identity, id: input.path.webhookId)
        let updated = try await deps.registry.withWorkspace(grant) {
            try await $0.updateWebhook(hook, draft: draft, allowHTTP: deps.webhooks.allowHTTP, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(updated, project: project))))
    }

    func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output {
        let identity = try RequestIdentity.required()
        let (grant, hook, _) = try await findWebhook(identity, id: input.path.webhookId)
        try await deps.registry.withWorkspace(grant) { try await $0.deleteWebhook(id: hook.id, by: RequestOrigin.actor(identity)) }
        return .noContent(.init())
    }

    func rotateWebhookSecret(_ input: Operations.RotateWebhookSecret.Input) async throws -> Operations.RotateWebhookSecret.Output {
        let identity = try RequestIdentity.required()
        var grace = WorkspaceActor.defaultSecretGraceSeconds
        if case .json(let body) = input.body, let given = body.graceSeconds {
            guard (0...604_800).contains(given) else {
                throw DomainError.validation(pointer: "/graceSeconds", "must be 0–604800 (7 days)")
            }
            grace = given
        }
        let (grant, hook, project) = try await findWebhook(identity, id: input.path.webhookId)
        let (rotated, secret) = try await deps.registry.withWorkspace(grant) {
            try await $0.rotateWebhookSecret(id: hook.id, graceSeconds: grace, by: RequestOrigin.actor(identity))
        }
        return .ok(.init(body: .json(.init(webhook: .init(rotated, project: project), secret: secret))))
    }

    func listWebhookDeliveries(_ input: Operations.ListWebhookDeliveries.Input) async throws -> Operations.ListWebhookDeliveries.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 50)
        let before = try input.query.cursor.flatMap { try Cursor.decodeID($0) }
        let (grant, hook, _) = try await findWebhook(identity, id: input.path.webhookId)
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.webhookDeliveries(webhookID: hook.id, before: before, limit: size + 1)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(id: $0.eventID) }
        return .ok(.init(body: .json(.init(items: page.map(Components.Schemas.WebhookDelivery.init), nextCursor: next))))
    }

    func redeliverWebhookDelivery(_ input: Operations.RedeliverWebhookDelivery.Input) async throws
        -> Operations.RedeliverWebhookDelivery.Output
    {
        let identity = try RequestIdentity.required()
        let (grant, hook, _) = try await findWebhook(identity, id: input.path.webhookId)
        let delivery = try await deps.registry.withWorkspace(grant) {
            try await $0.redeliver(webhookID: hook.id, deliveryID: input.path.deliveryId)
        }
        return .accepted(.init(body: .json(.init(delivery))))
    }

    func pingWebhook(_ input: Operations.PingWebhook.Input) async throws -> Operations.PingWebhook.Output {
        let identity = try RequestIdentity.required()
        let (grant, hook, _) = try await findWebhook(identity, id: input.path.webhookId)
        let delivery = try await deps.registry.withWorkspace(grant) { try await $0.pingWebhook(id: hook.id, by: RequestOrigin.actor(identity)) }
        return .accepted(.init(body: .json(.init(delivery))))
    }
}

extension Components.Schemas.Webhook {
    init(_ hook: WebhookRecord, project: Project) {
        self.init(
            id: hook.id, project: .init(id: project.id, slug: project.slug), url: hook.settings.url,
            events: hook.settings.events.map(\.rawValue), format: .init(rawValue: hook.settings.format.rawValue) ?? .kaizen,
            description: hook.settings.description, active: hook.settings.active, disabledReason: hook.disabledReason,
            previousSecretValidUntil: hook.previousSecretValidUntil, createdBy: hook.createdBy, createdAt: hook.createdAt,
            updatedAt: hook.updatedAt)
    }
}

extension Components.Schemas.WebhookDelivery {
    init(_ d: WebhookDeliveryRecord) {
        self.init(
            id: d.id, webhookId: d.webhookID, eventId: d.eventID, event: d.eventKind, state: .init(rawValue: d.state.rawValue) ?? .pending,
            attempts: d.attempts, responseStatus: d.lastStatus, latencyMs: d.lastLatencyMs, response: d.lastResponse, error: d.lastError,
            nextAttemptAt: d.nextAttemptAt, deliveredAt: d.deliveredAt, createdAt: d.createdAt)
    }
}
