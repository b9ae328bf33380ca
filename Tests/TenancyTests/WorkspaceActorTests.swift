import Domains
import Foundation
import KaizenTestSupport
import Logging
import Storage
import Testing

@testable import Tenancy

let logger: Logger = {
    var logger = Logger(label: "kaizen.tenancy-tests")
    logger.logLevel = .warning
    return logger
}()

/// A registry over a fresh two-server cluster, with two workspaces placed on different servers.
struct Fixture {
    let cluster: StorageCluster
    let registry: WorkspaceRegistry
    let a: WorkspaceGrant
    let b: WorkspaceGrant
}

func withFixture<T: Sendable>(_ body: (Fixture) async throws -> T) async throws -> T {
    let urls = try await TestPostgres.shared.freshDatabases()
    let servers = try StorageCluster.makeServers(urls: urls, maxConnectionsPerServer: 8, acquireTimeout: testAcquireTimeout, logger: logger)
    let pools = Task { await StorageCluster.runPools(servers) }
    defer { pools.cancel() }
    let cluster = try await StorageCluster.open(servers: servers, logicalShards: 4, logger: logger)
    let wa = try await cluster.catalog.createWorkspace(slug: "alpha", name: "Alpha")
    let wb = try await cluster.catalog.createWorkspace(slug: "beta", name: "Beta")
    let blobs = try FileBlobStore(root: FileManager.default.temporaryDirectory.path + "/kaizen-actor-\(UUID().uuidString)")
    let registry = WorkspaceRegistry(storage: cluster, blobs: blobs, idleSeconds: 60, logger: logger)
    return try await body(
        Fixture(
            cluster: cluster, registry: registry,
            a: WorkspaceGrant(workspaceID: wa.id, workspaceSlug: wa.slug, shardID: wa.shardID, role: .admin),
            b: WorkspaceGrant(workspaceID: wb.id, workspaceSlug: wb.slug, shardID: wb.shardID, role: .admin)))
}

@Suite struct WorkspaceActorTests {
    @Test func concurrentWritesOfOneWorkspaceAreSerialized() async throws {
        try await withFixture { f in
            let count = 40
            let projects = try await withThrowingTaskGroup(of: Project.self) { group in
                for index in 0..<count {
                    group.addTask {
                        try await f.registry.withWorkspace(f.a) {
                            try await $0.createProject(slug: "p\(index)", name: "P\(index)", accessMode: .team, defaultBranch: "main")
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Every write got its own sequence number, with no gap and no duplicate…
            #expect(projects.map(\.createdSeq).sorted() == (1...Int64(count)).map { $0 })
            // …and never two were inside the lane at once.
            let actor = try #require(f.registry.existingActor(workspaceID: f.a.workspaceID))
            #expect(await actor.maxWritesInLane == 1)
            #expect(f.registry.count == 1)
        }
    }

    @Test func racingDuplicatesCreateOneProject() async throws {
        try await withFixture { f in
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        do {
                            _ = try await f.registry.withWorkspace(f.a) {
                                try await $0.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
                            }
                            return true
                        } catch let error as DomainError {
                            return error.kind == .conflict ? false : true
                        } catch {
                            return true
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            let stored = try await f.cluster.repositories(workspaceID: f.a.workspaceID, shardID: f.a.shardID).projects.projects()
            #expect(stored.map(\.slug) == ["web"])
        }
    }

    @Test func twoWorkspacesProceedInParallel() async throws {
        try await withFixture { f in
            let gate = Gate()
            // Hold workspace A's write lane until B has finished a write of its own.
            let blocked = Task {
                try await f.registry.withWorkspace(f.a) { actor in
                    try await actor.sequenced { _ in await gate.wait() }
                }
            }
            while await gate.waiting == 0 { await Task.yield() }
            let project = try await f.registry.withWorkspace(f.b) {
                try await $0.createProject(slug: "b-web", name: "B", accessMode: .team, defaultBranch: "main")
            }
            #expect(project.workspaceID == f.b.workspaceID)
            // A is still held: its lane has not been released.
            let actorA = try #require(f.registry.existingActor(workspaceID: f.a.workspaceID))
            #expect(await actorA.writesInLane == 1)
            await gate.open()
            try await blocked.value
            #expect(await actorA.writesInLane == 0)
        }
    }

    @Test func evictedWorkspaceComesBackWithNothingLost() async throws {
        try await withFixture { f in
            let first = try await f.registry.withWorkspace(f.a) {
                try await $0.createProject(slug: "web", name: "Web", accessMode: .private, defaultBranch: "trunk")
            }
            let before = try #require(f.registry.existingActor(workspaceID: f.a.workspaceID))
            // An actor in use is never evicted.
            try await f.registry.withWorkspace(f.a) { _ in
                #expect(f.registry.evictIdle(olderThanNanos: 0) == 0)
            }
            #expect(f.registry.evictIdle(olderThanNanos: 0) == 1)
            #expect(f.registry.existingActor(workspaceID: f.a.workspaceID) == nil)
            #expect(f.registry.count == 0)

            let reloaded = try await f.registry.withWorkspace(f.a) { try await $0.project(slug: "web") }
            #expect(reloaded == first)
            let after = try #require(f.registry.existingActor(workspaceID: f.a.workspaceID))
            #expect(after !== before)
            // Sequencing continues where it stopped.
            let second = try await f.registry.withWorkspace(f.a) {
                try await $0.createProject(slug: "api", name: "API", accessMode: .team, defaultBranch: "main")
            }
            #expect(second.createdSeq == first.createdSeq + 1)
        }
    }

    @Test func workspacesAreIsolated() async throws {
        try await withFixture { f in
            _ = try await f.registry.withWorkspace(f.a) {
                try await $0.createProject(slug: "web", name: "Web", accessMode: .team, defaultBranch: "main")
            }
            let inB = try await f.registry.withWorkspace(f.b) { try await $0.project(slug: "web") }
            #expect(inB == nil)
            // Same slug in another workspace is fine.
            _ = try await f.registry.withWorkspace(f.b) {
                try await $0.createProject(slug: "web", name: "Web B", accessMode: .team, defaultBranch: "main")
            }
        }
    }
}

