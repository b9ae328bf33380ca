import Domains
import Logging
import Synchronization
import Tenancy

/// Everything the handlers need, built once at start. Tenant data is reached only through the workspace
/// actors (`registry`); workspace-less data through the `directory`.
public struct GatewayDependencies: Sendable {
    public let directory: Directory
    public let registry: WorkspaceRegistry
    public let authenticator: Authenticator
    public let limiter: RateLimiter
    public let document: OpenAPIDocument
    public let version: String
    public let logger: Logger
    public let ingest: IngestSettings
    public let workspaceCreation: WorkspaceCreationPolicy
    public let accounts: AccountService
    public let sessions: SessionCookies
    public let signInThrottle: SignInThrottle
    public let webhooks: WebhookAPISettings
    /// People's notifications (nil in a process that serves none, such as a benchmark's responder).
    public let inbox: InboxService?
    /// Encoded `GET /v1/runs/:id` answers (runs never change).
    public let runResponses = RunResponseCache()
    /// Finalizes in flight, which the job worker yields to.
    public let ingestActivity = IngestActivity()

    public init(
        directory: Directory, registry: WorkspaceRegistry, authenticator: Authenticator, limiter: RateLimiter,
        document: OpenAPIDocument, version: String, logger: Logger, ingest: IngestSettings,
        workspaceCreation: WorkspaceCreationPolicy = .members, accounts: AccountService, sessions: SessionCookies,
        signInThrottle: SignInThrottle, webhooks: WebhookAPISettings = WebhookAPISettings(), inbox: InboxService? = nil
    ) {
        self.inbox = inbox
        self.webhooks = webhooks
        self.accounts = accounts
        self.sessions = sessions
        self.signInThrottle = signInThrottle
        self.ingest = ingest
        self.workspaceCreation = workspaceCreation
        self.directory = directory
        self.registry = registry
        self.authenticator = authenticator
        self.limiter = limiter
        self.document = document
        self.version = version
        self.logger = logger
    }
}

/// What the webhook API needs from the operator's configuration.
public struct WebhookAPISettings: Sendable {
    /// Plain-http destinations are accepted (`KAIZEN_WEBHOOK_ALLOW_HTTP`); otherwise https only.
    public let allowHTTP: Bool

    public init(allowHTTP: Bool = false) { self.allowHTTP = allowHTTP }
}

/// What ingest needs beyond the workspaces.
public struct IngestSettings: Sendable {
    public let signer: UploadSigner
    /// Base of presigned upload URLs and report links, e.g. `http://127.0.0.1:8080`.
    public let publicURL: PublicURL
    public let finalizeQuota: RateLimit
    public let validator: KenshoValidator
    public let maxAttachmentBytes: Int64
    /// How long a sharded run waits for its next shard before it is closed as partial.
    public let shardTimeoutSeconds: Int

    public init(
        signer: UploadSigner, publicURL: PublicURL, finalizeQuota: RateLimit,
        validator: KenshoValidator = KenshoValidator(), maxAttachmentBytes: Int64 = 1 << 30,
        shardTimeoutSeconds: Int = WorkspaceActor.defaultShardTimeoutSeconds
    ) {
        self.shardTimeoutSeconds = shardTimeoutSeconds
        self.signer = signer
        self.publicURL = publicURL
        self.finalizeQuota = finalizeQuota
        self.validator = validator
        self.maxAttachmentBytes = maxAttachmentBytes
    }
}

/// The implementation of the generated `APIProtocol`; one file per resource extends it.
struct KaizenAPI: APIProtocol {
    let deps: GatewayDependencies

    /// The caller's grant for a workspace slug, or 404 (a workspace of someone else does not exist for them).
    func grant(_ identity: Identity, workspace slug: String) throws -> WorkspaceGrant {
        guard let grant = identity.grant(workspaceSlug: slug) else {
            throw DomainError.notFound("workspace '\(slug)' not found")
        }
        return grant
    }

    func requireAdmin(_ grant: WorkspaceGrant) throws {
        guard grant.role.canAdminister else {
            throw DomainError.forbidden("this needs the admin role in workspace '\(grant.workspaceSlug)'; the token has '\(grant.role.rawValue)'")
        }
    }

    /// The grant a write names (`workspace` slug) or implies (a token with one workspace).
    func targetGrant(_ identity: Identity, workspace slug: String?, pointer: String) throws -> WorkspaceGrant {
        if let slug { return try grant(identity, workspace: slug) }
        if identity.grants.count == 1 { return identity.grants[0] }
        throw DomainError.validation(pointer: pointer, "is required: this token can act in \(identity.grants.count) workspaces")
    }

    /// Finds a project by slug among the caller's workspaces (or the one named): 404 when none, 409 when several.
    func resolveProject(_ identity: Identity, slug: String, workspace: String?) async throws -> (WorkspaceGrant, Project) {
        let grants = try workspace.map { [try grant(identity, workspace: $0)] } ?? identity.grants
        var found: [(WorkspaceGrant, Project)] = []
        for grant in grants {
            if let project = try await deps.registry.withWorkspace(grant, { try await $0.project(slug: slug) }),
                project.accessMode.visible(to: grant.role, tokenClass: identity.tokenClass)
            {
                found.append((grant, project))
            }
        }
        guard let first = found.first else { throw DomainError.notFound("project '\(slug)' not found") }
        if found.count > 1 {
            throw DomainError.conflict(
                "project slug '\(slug)' exists in \(found.count) of your workspaces; pass ?workspace=<slug>",
                details: ["workspaces": .array(found.map { .string($0.0.workspaceSlug) })])
        }
        return first
    }

    func requireWrite(_ grant: WorkspaceGrant) throws {
        guard grant.role.canWrite else {
            throw DomainError.forbidden("the viewer role cannot change anything in workspace '\(grant.workspaceSlug)'")
        }
    }
}

/// The server's own base URL. Settable once the listener is bound, since port 0 picks a port at start.
public final class PublicURL: Sendable {
    private let storage: Mutex<String>

    public init(_ value: String) { storage = Mutex(value) }

    public var value: String { storage.withLock { $0 } }

    public func set(_ value: String) { storage.withLock { $0 = value } }

    /// Served over TLS: session cookies are then `Secure`.
    public var isHTTPS: Bool { value.lowercased().hasPrefix("https://") }
}
