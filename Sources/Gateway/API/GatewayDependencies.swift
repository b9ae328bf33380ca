import Domains
import Logging
import Storage
import Tenancy

/// Everything the handlers need, built once at start.
public struct GatewayDependencies: Sendable {
    public let cluster: StorageCluster
    public let registry: WorkspaceRegistry
    public let authenticator: Authenticator
    public let limiter: RateLimiter
    public let document: OpenAPIDocument
    public let version: String
    public let logger: Logger

    public init(
        cluster: StorageCluster, registry: WorkspaceRegistry, authenticator: Authenticator, limiter: RateLimiter,
        document: OpenAPIDocument, version: String, logger: Logger
    ) {
        self.cluster = cluster
        self.registry = registry
        self.authenticator = authenticator
        self.limiter = limiter
        self.document = document
        self.version = version
        self.logger = logger
    }
}

/// The implementation of the generated `APIProtocol`; one file per resource extends it.
struct KaizenAPI: APIProtocol {
    let deps: GatewayDependencies

    /// The caller's grant for a workspace slug, or 404 (a workspace of someone else does not exist for them).
    func grant(_ identity: Identity, workspace slug: String) throws -> WorkspaceGrant {
        guard let grant = identity.grant(workspaceSlug: slug) else {
            throw APIError.notFound("workspace '\(slug)' not found")
        }
        return grant
    }

    func requireAdmin(_ grant: WorkspaceGrant) throws {
        guard grant.role.canAdminister else {
            throw APIError.forbidden("this needs the admin role in workspace '\(grant.workspaceSlug)'; the token has '\(grant.role.rawValue)'")
        }
    }

    func requireWrite(_ grant: WorkspaceGrant) throws {
        guard grant.role.canWrite else {
            throw APIError.forbidden("the viewer role cannot change anything in workspace '\(grant.workspaceSlug)'")
        }
    }
}
