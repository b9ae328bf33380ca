import Domains
import Foundation
import Logging
import Storage

/// Workspaces and workspace tokens made straight in the server's catalog (as `kaizen workspace
/// create` and `kaizen token create` do), so a scenario can have hundreds of tenants quickly.
struct Tenants {
    let cluster: StorageCluster
    let pools: Task<Void, Never>

    static func open(_ server: KaizenProcess, logger: Logger) async throws -> Tenants {
        let servers = try StorageCluster.makeServers(urls: [server.databaseURL], maxConnectionsPerServer: 4, logger: logger)
        let pools = Task { await StorageCluster.runPools(servers) }
        return Tenants(cluster: try await StorageCluster.open(servers: servers, logicalShards: 16, logger: logger), pools: pools)
    }

    /// A workspace and an admin workspace token for it.
    func make(_ slug: String) async throws -> (workspace: String, token: String) {
        let workspace = try await cluster.catalog.createWorkspace(slug: slug, name: slug)
        let (_, secret) = try await cluster.catalog.createToken(
            .init(name: "load", tokenClass: .workspace, workspaceID: workspace.id, role: .admin, userID: nil, createdBy: nil,
                  expiresAt: nil))
        return (workspace.slug, secret)
    }

    func close() { pools.cancel() }
}
