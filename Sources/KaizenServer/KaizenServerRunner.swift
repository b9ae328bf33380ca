import Domains
import Foundation
import Gateway
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import Storage
import Tenancy
import UnixSignals

/// What a started server tells its caller.
public struct ServerReady: Sendable {
    public let host: String
    public let port: Int
    public let tlsPort: Int?
    public let firstRun: FirstRun.Result?
    public let cluster: StorageCluster
    public let registry: WorkspaceRegistry
    /// Starts the same graceful shutdown as SIGTERM.
    public let shutdown: ShutdownHandle
}

/// Lets an embedding program (tests, a supervisor) stop the server gracefully without a signal.
public actor ShutdownHandle {
    private var group: ServiceGroup?
    private var requested = false

    func attach(_ group: ServiceGroup) async {
        self.group = group
        if requested { await group.triggerGracefulShutdown() }
    }

    public func shutdown() async {
        requested = true
        await group?.triggerGracefulShutdown()
    }
}

/// `kaizen serve`: storage, first-run bootstrap, the gateway on its listeners, background upkeep,
/// and a graceful shutdown on SIGTERM/SIGINT (or cancellation) that lets in-flight requests finish
/// before the pools close and an embedded PostgreSQL we started is stopped.
public enum KaizenServerRunner {
    public static func run(
        config: KaizenConfiguration,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        onReady: @escaping @Sendable (ServerReady) async -> Void = { _ in }
    ) async throws {
        MemoryTrimmer.configureAllocator()
        let storage = try await StorageHandle.open(config, logger: logger)
        do {
            try await serve(storage: storage, config: config, logger: logger, signals: gracefulShutdownSignals, onReady: onReady)
        } catch {
            await storage.close()
            throw error
        }
        await storage.close()
    }

    static func blobStore(_ config: KaizenConfiguration, logger: Logger) async throws -> any BlobStore {
        guard let s3 = config.s3 else { return try FileBlobStore(root: config.blobDirectory) }
        let store = try S3BlobStore(s3)
        try await store.checkBucket()
        logger.info("attachments in S3", metadata: ["endpoint": "\(s3.endpoint)", "bucket": "\(s3.bucket)"])
        return store
    }

    static func serve(
        storage: StorageHandle, config: KaizenConfiguration, logger: Logger, signals: [UnixSignal],
        onReady: @escaping @Sendable (ServerReady) async -> Void
    ) async throws {
        let cluster = storage.cluster
        let firstRun = try await FirstRun.bootstrap(cluster, config: config, logger: logger)
        let relay = ProgressRelay()
        let live = LiveEventHub(relay: { relay.send($0) })
        let registry = WorkspaceRegistry(
            storage: cluster, blobs: try await blobStore(config, logger: logger), idleSeconds: config.actorIdleSeconds,
            cacheIdleSeconds: config.ingestCacheIdleSeconds, logger: logger, live: live,
            rollUpBackpressure: config.rollUpBackpressure, clock: config.quotaClock ?? { Clock.monotonicNanoseconds() })
        let limiter = RateLimiter(
            user: config.userRateLimit, workspace: config.workspaceRateLimit,
            clock: config.rateLimitClock ?? { Clock.monotonicNanoseconds() })
        let publicURL = PublicURL(config.publicURL ?? "http://\(config.host):\(config.port)")
        let ingest = IngestSettings(
            signer: UploadSigner(secretHex: try await cluster.catalog.serverSecret("upload-signing")),
            publicURL: publicURL, finalizeQuota: config.finalizeQuota,
            maxAttachmentBytes: config.maxAttachmentBytes, shardTimeoutSeconds: config.shardTimeoutSeconds)
        let directory = Directory(catalog: cluster.catalog)
        let authenticator = Authenticator(directory: directory, cacheSeconds: config.authCacheSeconds)
        let deps = GatewayDependencies(
            directory: directory, registry: registry, authenticator: authenticator,
            limiter: limiter,
            document: try OpenAPIDocument(publicURL: publicURL.value, maxAttachmentBytes: config.maxAttachmentBytes),
            version: KaizenVersion.current, logger: logger, ingest: ingest,
            workspaceCreation: config.workspaceCreation,
            accounts: AccountService(
                repository: cluster.catalog, passwords: BcryptPasswordHasher(cost: config.bcryptCost),
                sessionSeconds: config.sessionSeconds),
            sessions: SessionCookies(keyHex: try await cluster.catalog.serverSecret("session-csrf")),
            signInThrottle: SignInThrottle(
                accountBurst: config.signInBurst, addressBurst: config.signInAddressBurst,
                refillPerMinute: config.signInRefillPerMinute,
                clock: config.rateLimitClock ?? { Clock.monotonicNanoseconds() }),
            webhooks: WebhookAPISettings(allowHTTP: config.webhookAllowHTTP),
            inbox: InboxService(repository: cluster.catalog, live: live))
        let responder = try GatewayRouter.build(deps, maxBodyBytes: config.maxBodyBytes).buildResponder()

        let ports = PortCollector(expecting: config.tlsCertificatePath == nil ? 1 : 2)
        // Idle connections are closed: HTTP/1.1 with no request in flight (which also bounds how long
        // a request head may take), HTTP/2 with no open stream, and a connection that says nothing.
        let idle = TimeAmount.milliseconds(Int64(config.idleTimeoutSeconds * 1000))
        let http1 = HTTP1Channel.Configuration(idleTimeout: idle)
        let http2: HTTP2ChannelConfiguration = {
            var http2 = HTTP2ChannelConfiguration(
                idleTimeout: .milliseconds(Int64(config.idleTimeoutSeconds * 1000)), gracefulCloseTimeout: .seconds(5),
                streamConfiguration: http1)
            http2.maxAgeTimeout = nil  // the initializer drops it; no forced reconnects
            return http2
        }()
        let firstBytes = TimeAmount.milliseconds(Int64(config.headerTimeoutSeconds * 1000))
        let plaintext = Application(
            responder: responder,
            server: HTTPServerBuilder { responder in
                HTTPVersionSniffingChannel(
                    configuration: http2, http1: http1, firstBytesTimeout: firstBytes, responder: responder)
            },
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "kaizen"),
            onServerRunning: { channel in await ports.record(plaintext: channel.localAddress?.port ?? config.port) },
            logger: logger)
        var services: [any Service] = [plaintext]
        if let cert = config.tlsCertificatePath, let key = config.tlsKeyPath {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            services.append(
                Application(
                    responder: responder,
                    server: try .http2Upgrade(tlsConfiguration: tls, configuration: http2),
                    configuration: .init(address: .hostname(config.host, port: config.tlsPort), serverName: "kaizen"),
                    onServerRunning: { channel in await ports.record(tls: channel.localAddress?.port ?? config.tlsPort) },
                    logger: logger))
        }
        let watchdog = ShutdownWatchdog(limit: .milliseconds(Int64((config.shutdownGraceSeconds + 4) * 1000)))
        services.append(
            UpkeepService(
                registry: registry, limiter: limiter, activity: deps.ingestActivity,
                sweepEvery: .milliseconds(Int64(min(max(1, config.rateLimitSweepSeconds), 1e6) * 1000))))
        services.append(IdentityChangeService(feed: cluster.catalog, authenticator: authenticator))
        services.append(
            TokenUseService(
                authenticator: authenticator, directory: directory,
                period: .milliseconds(Int64(config.tokenUseFlushSeconds * 1000)), logger: logger))
        services.append(
            JobWorkerService(
                cluster: cluster, registry: registry, activity: deps.ingestActivity, logger: logger,
                lease: .milliseconds(Int64(config.jobLeaseSeconds * 1000)), lanes: config.rollUpLanes))
        services.append(MemoryTrimmer(activity: deps.ingestActivity, logger: logger))
        services.append(
            WebhookDeliveryService(
                outboxes: cluster.servers.map { WebhookOutbox(server: $0, logger: logger) }, publicURL: publicURL,
                policy: config.webhookNetworks, timeout: .milliseconds(Int64(config.webhookTimeoutSeconds * 1000)),
                firstRetrySeconds: config.webhookFirstRetrySeconds, logger: logger))
        services.append(
            LiveEventService(
                logs: cluster.servers.map { EventLog(server: $0, logger: logger) },
                notifiers: cluster.servers.map { Notifier(source: $0, catalog: cluster.catalog.server, logger: logger) },
                catalog: cluster.catalog, hub: live, relay: relay,
                heartbeat: .milliseconds(Int64(config.streamHeartbeatSeconds * 1000)), logger: logger))
        let shutdown = ShutdownHandle()
        services.append(
            ReadyNotifier(ports: ports) { port, tlsPort in
                if config.publicURL == nil { publicURL.set("http://\(config.host):\(port)") }
                await onReady(
                    ServerReady(
                        host: config.host, port: port, tlsPort: tlsPort, firstRun: firstRun, cluster: cluster,
                        registry: registry, shutdown: shutdown))
            })
        // Last, so that it is the first told of a graceful shutdown (services stop in reverse order).
        services.append(watchdog)
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: signals, logger: logger)
        // Bounded shutdown: in-flight requests get the grace period to finish, then everything is
        // cancelled, so a database that stopped answering cannot hold the process up. (No
        // maximumCancellationDuration: ServiceLifecycle answers an overrun with fatalError.)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(config.shutdownGraceSeconds * 1000))
        let group = ServiceGroup(configuration: groupConfiguration)
        await shutdown.attach(group)
        let running = Task { try await group.run() }
        // The group runs in its own task so that the watchdog can stop waiting for it; cancelling
        // this task must still reach it.
        let ending = await withTaskCancellationHandler {
            await watchdog.race(running)
        } onCancel: {
            running.cancel()
        }
        switch ending {
        case .finished(let result):
            try result.get()
        case .overdue:
            logger.error(
                "shutdown did not finish \(config.shutdownGraceSeconds + 4) s after it began; leaving the rest behind")
        }
    }
}

/// Bounds the whole shutdown: once graceful shutdown begins, the service group gets the grace period
/// plus a few seconds for cancellation; if something still does not return (a driver call that
/// ignores cancellation), the server stops waiting for it instead of hanging the process.
final class ShutdownWatchdog: Service, Sendable {
    enum Ending: Sendable {
        case finished(Result<Void, any Error>)
        case overdue
    }

    let limit: Duration
    private let ending = FirstOutcome<Ending>()

    init(limit: Duration) { self.limit = limit }

    func run() async throws {
        // Returns when the group begins a graceful shutdown, throws when it is cancelled: either way
        // the group is ending, and the timer starts.
        try? await gracefulShutdown()
        let limit = self.limit
        let ending = self.ending
        // Unstructured: the timer must outlive this service, which ends with the group.
        Task {
            try? await Task.sleep(for: limit)
            ending.resume(with: .success(.overdue))
        }
    }

    /// The group's result, or `.overdue` when the limit passed first.
    func race(_ group: Task<Void, any Error>) async -> Ending {
        let ending = self.ending
        Task { ending.resume(with: .success(.finished(await group.result))) }
        return (try? await ending.value()) ?? .overdue
    }
}

/// Collects the bound ports of the listeners (port 0 means "any free port").
actor PortCollector {
    let expecting: Int
    var plaintext: Int?
    var tls: Int?
    var waiters: [CheckedContinuation<(Int, Int?), Never>] = []

    init(expecting: Int) { self.expecting = expecting }

    func record(plaintext port: Int) { plaintext = port; notify() }
    func record(tls port: Int) { tls = port; notify() }

    private func notify() {
        guard let plaintext, expecting == 1 || tls != nil else { return }
        for waiter in waiters { waiter.resume(returning: (plaintext, tls)) }
        waiters = []
    }

    func wait() async -> (Int, Int?) {
        if let plaintext, expecting == 1 || tls != nil { return (plaintext, tls) }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

/// Calls back once every listener is bound, then idles until shutdown.
struct ReadyNotifier: Service {
    let ports: PortCollector
    let callback: @Sendable (Int, Int?) async -> Void

    func run() async throws {
        let (port, tls) = await cancelWhenGracefulShutdown { await ports.wait() } ?? (0, nil)
        if port != 0 { await callback(port, tls) }
        try? await gracefulShutdown()
    }
}

/// Evicts idle workspace actors and forgets refilled rate-limit buckets.
struct UpkeepService: Service {
    let registry: WorkspaceRegistry
    let limiter: RateLimiter
    /// Told of evictions, so that the memory they free is given back.
    let activity: IngestActivity
    /// The rate limiter's sweep period.
    let sweepEvery: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await registry.runEvictor { _ in activity.recordWork() } }
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: sweepEvery) } catch { return }
                        limiter.sweep()
                    }
                }
            }
        }
    }
}

/// Writes when tokens were last used, from what the authenticator saw, once per `period` (one
/// statement for all of them, not a write per request), and once more at shutdown.
struct TokenUseService: Service {
    let authenticator: Authenticator
    let directory: Directory
    let period: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: period) } catch { break }
                await flush()
            }
        }
        await flush()
    }

    func flush() async {
        let uses = authenticator.drainUses()
        guard !uses.isEmpty else { return }
        do { try await directory.recordTokenUse(uses) } catch {
            logger.debug("could not record token use", metadata: ["tokens": "\(uses.count)", "error": "\(error)"])
        }
    }
}

/// Keeps this node's identity cache in step with revocations and membership changes made on any node.
struct IdentityChangeService: Service {
    let feed: any IdentityChangeFeed
    let authenticator: Authenticator

    func run() async throws {
        let authenticator = self.authenticator
        await cancelWhenGracefulShutdown {
            await feed.follow { authenticator.invalidate($0) }
        }
    }
}
