import Domains
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import _ConnectionPoolModule

/// One PostgreSQL server of the cluster, with its connection pool.
/// Every query goes through `run` so that connection failures become `DomainError.shardUnavailable`
/// naming this server (its address goes to the log only), and unique violations `.uniqueViolation`.
public final class PhysicalServer: Sendable {
    public let index: Int
    public let url: DatabaseURL
    public let client: PostgresClient
    let logger: Logger

    /// How long a request waits for a connection before the server is reported unavailable.
    public let acquireTimeout: Duration

    /// Finalized runs' results on their way to their roll-up on this node (`FreshResults`): 250,000 results
    /// at most, about 10 MB.
    let freshResults = FreshResults(capacity: 250_000)

    /// COPYs running on this pool's connections (`countedCopyFrom`). The pool is closed only once none is left
    /// (`StorageCluster.closePools`): PostgresNIO traps when a connection is force-closed in the middle of a COPY.
    /// Other statements may be cut: their transaction rolls back.
    let copies = CopyCounter()

    /// How many COPYs run on this server's connections now.
    public var copiesRunning: Int { copies.running.load(ordering: .acquiring) }

    public init(index: Int, url: DatabaseURL, maxConnections: Int, acquireTimeout: Duration = .seconds(5), logger: Logger) {
        self.acquireTimeout = acquireTimeout
        var config = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: url.requireTLS ? .require(.makeClientConfiguration()) : .disable)
        config.options.maximumConnections = maxConnections
        config.options.minimumConnections = 0
        // Fail fast when a server is down so the request gets a 503 naming it, rather than hanging.
        config.options.connectTimeout = .seconds(3)
        self.index = index
        self.url = url
        self.logger = logger
        self.client = PostgresClient(configuration: config, backgroundLogger: logger)
    }

    /// Runs `body` with a pooled connection, translating driver errors.
    public func run<T: Sendable>(_ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await leased { acquired in
                try await self.client.withConnection { connection in
                    acquired.set()
                    return try await CopyCounter.$current.withValue(self.copies) { try await body(connection) }
                }
            }
        } catch {
            throw translate(error)
        }
    }

    /// Runs `body` in one transaction (BEGIN … COMMIT, ROLLBACK on error).
    public func transaction<T: Sendable>(_ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await leased { acquired in
                try await self.client.withTransaction(logger: self.logger) { connection in
                    acquired.set()
                    return try await CopyCounter.$current.withValue(self.copies) { try await body(connection) }
                }
            }
        } catch let error as PostgresTransactionError {
            throw translate(error.closureError ?? error.beginError ?? error.commitError ?? error)
        } catch {
            throw translate(error)
        }
    }

    /// Bounds the wait for a connection, not the work done with it: while a server is down the pool
    /// keeps retrying to connect, and a request should get its 503 quickly instead of hanging.
    /// `operation` calls `set()` on the flag once it holds a connection; after that the deadline is void.
    ///
    /// The operation runs in its own task and the caller waits on a continuation, not on that task:
    /// a connection request to an unreachable server does not always end when cancelled, and a
    /// caller that is cancelled (a shutting-down worker) or timed out must not wait for it.
    private func leased<T: Sendable>(_ operation: @Sendable @escaping (Flag) async throws -> T) async throws -> T {
        let acquired = Flag()
        let outcome = FirstOutcome<T>()
        let work = Task {
            do {
                outcome.resume(with: .success(try await operation(acquired)))
            } catch {
                outcome.resume(with: .failure(error))
            }
        }
        let deadline = Task {
            try await Task.sleep(for: self.acquireTimeout)
            if !acquired.isSet {
                outcome.resume(with: .failure(self.unavailable("no connection within \(self.acquireTimeout)")))
                work.cancel()
            }
        }
        defer { deadline.cancel() }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            work.cancel()
            // Holding a connection, the work sees the cancellation and ends; waiting for one, it may not.
            if !acquired.isSet { outcome.resume(with: .failure(CancellationError())) }
        }
    }

    /// Cheap liveness probe for `/healthz`.
    public func ping(timeout: Duration = .seconds(5)) async -> String? {
        do {
            let answered = try await awaitAtMost(timeout) {
                _ = try await self.run { try await $0.query("SELECT 1", logger: self.logger) }
            }
            if answered == nil { throw unavailable("timed out") }
            return nil
        } catch let error as DomainError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// The error a caller sees when this server does not answer; the address and cause go to the log.
    func unavailable(_ underlying: String) -> DomainError {
        logger.warning("database server \(index) (\(url)) is unavailable: \(underlying)")
        return .shardUnavailable(server: index)
    }

    func translate(_ error: any Error) -> any Error {
        if error is DomainError { return error }
        if let psql = error as? PSQLError {
            switch psql.code {
            case .server:
                let state = psql.serverInfo?[.sqlState]
                if state == "23505" {
                    return DomainError.uniqueViolation(constraint: psql.serverInfo?[.constraintName] ?? "unknown")
                }
                // 57P01 admin shutdown, 57P03 cannot connect now, 53300 too many connections
                if let state, state.hasPrefix("57P") || state == "53300" {
                    return unavailable(psql.serverInfo?[.message] ?? state)
                }
                return error
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection:
                return unavailable("\(psql.code)")
            default:
                return error
            }
        }
        if error is ChannelError || error is IOError || error is ConnectionPoolError {
            return unavailable("\(error)")
        }
        return error
    }
}

/// A one-way boolean shared between the tasks of one query.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
