import Synchronization
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// A failure the user should read: the server's error envelope, or why the server could not be reached.
public struct KenshoFailure: Error, CustomStringConvertible, Sendable {
    public let status: Int?
    public let code: String?
    public let message: String
    public let details: String?

    public var description: String {
        // With a list of problems the message would repeat the first of them: the list says it all.
        if let details, !details.isEmpty, let status {
            return "Kaizen refused the request (\(status)\(code.map { " \($0)" } ?? "")):\n" + details
        }
        return status.map { "Kaizen answered \($0)\(code.map { " \($0)" } ?? ""): \(message)" } ?? message
    }

    public init(status: Int?, code: String?, message: String, details: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }
}

/// Retries 429, 5xx and network errors with exponential backoff and full jitter, honouring
/// `Retry-After`. Every Kaizen call the CLI makes is safe to repeat: finalize is idempotent on
/// externalRunId, a repeated init only opens another upload session.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(attempts: Int = 6, baseDelay: Double = 0.5, maxDelay: Double = 30) {
        self.attempts = max(1, attempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Seconds to wait before attempt `attempt + 1` (attempt counts from 1).
    public func delay(afterAttempt attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(maxDelay, max(0, retryAfter)) }
        let ceiling = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    /// What can succeed later: 429 and a gateway or server that is briefly unavailable. A 500 is a
    /// server bug that repeating the same request will not fix.
    public static func retryable(status: Int) -> Bool { status == 429 || status == 502 || status == 503 || status == 504 }
}

/// Counts what the retry layer did, for `--json` and the tests.
public final class RetryLog: Sendable {
    private let counts = Mutex<[Int: Int]>([:])
    private let answered = Atomic<Bool>(false)
    public init() {}
    func note(_ status: Int) { counts.withLock { $0[status, default: 0] += 1 } }
    /// The server answered at least once during this push.
    func reached() { answered.store(true, ordering: .relaxed) }
    var hasReached: Bool { answered.load(ordering: .relaxed) }
    /// Retried responses by status (0: network error).
    public var retried: [Int: Int] { counts.withLock { $0 } }
}

extension RetryPolicy {
    /// What one attempt came to.
    enum Attempt<T> {
        case done(T)
        /// A retryable answer (429, 502–504): again after the delay, or, with no attempt left, `exhausted`.
        case retryable(status: Int, retryAfter: Double?, exhausted: Result<T, any Error>)
    }

    /// The one retry loop of the CLI (API calls and attachment uploads): runs `body` until it is done, the
    /// attempts run out, or it fails in a way `canRetry` says a later attempt cannot fix (then `giveUp`
    /// names the failure). A `KenshoFailure` thrown by `body` is final.
    func perform<T>(
        log: RetryLog, canRetry: (any Error) -> Bool, giveUp: (any Error) -> any Error,
        _ body: () async throws -> Attempt<T>
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                switch try await body() {
                case .done(let value):
                    return value
                case .retryable(let status, let retryAfter, let exhausted):
                    guard attempt < attempts else { return try exhausted.get() }
                    log.note(status)
                    try await Task.sleep(for: .seconds(delay(afterAttempt: attempt, retryAfter: retryAfter)))
                }
            } catch let error as CancellationError {
                throw error
            } catch let failure as KenshoFailure {
                throw failure
            } catch {
                guard attempt < attempts, canRetry(error) else { throw giveUp(error) }
                log.note(0)
                try await Task.sleep(for: .seconds(delay(afterAttempt: attempt, retryAfter: nil)))
            }
            attempt += 1
        }
    }
}

struct RetryMiddleware: ClientMiddleware {
    let policy: RetryPolicy
    let log: RetryLog

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        // Buffer the body once so every attempt can send it (bodies here are JSON, bounded by the server's limit).
        var bytes: [UInt8]?
        if let body { bytes = try await [UInt8](collecting: body, upTo: 512 << 20) }
        let log = self.log
        return try await policy.perform(
            log: log,
            // A server never reached (refused, unknown host, TLS) is a wrong URL or a server that is
            // down: say so at once. Once it has answered, a dropped connection is worth retrying.
            canRetry: { TransportProblem.canSucceedLater($0) || (log.hasReached && TransportProblem.isConnectionFailure($0)) },
            giveUp: {
                KenshoFailure(
                    status: nil, code: nil,
                    message: "could not reach Kaizen at \(baseURL.absoluteString): \(TransportProblem.describe($0))")
            }
        ) {
            let (response, responseBody) = try await next(request, bytes.map { HTTPBody($0) }, baseURL)
            log.reached()
            let status = response.status.code
            guard RetryPolicy.retryable(status: status) else { return .done((response, responseBody)) }
            return .retryable(
                status: status, retryAfter: response.headerFields[.retryAfter].flatMap(Double.init),
                exhausted: .success((response, responseBody)))
        }
    }
}

/// Turns every non-2xx answer into a `KenshoFailure` carrying the envelope's code, message and
/// JSON-pointer problems, so the typed client only ever sees successes.
struct EnvelopeMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        var data = Data()
        if let responseBody { data = try await Data(collecting: responseBody, upTo: 1 << 20) }
        throw Self.failure(status: response.status.code, body: data)
    }

    static func failure(status: Int, body: Data) -> KenshoFailure {
        let envelope = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        let error: [String: Any] = envelope?["error"] as? [String: Any] ?? [:]
        let details: [String: Any] = error["details"] as? [String: Any] ?? [:]
        let problems: [[String: Any]] = details["errors"] as? [[String: Any]] ?? []
        var lines: [String] = []
        for problem in problems.prefix(20) {
            let pointer = problem["pointer"] as? String ?? "?"
            let message = problem["message"] as? String ?? ""
            lines.append("  \(pointer): \(message)")
        }
        let message = error["message"] as? String ?? String(decoding: body.prefix(300), as: UTF8.self)
        return KenshoFailure(status: status, code: error["code"] as? String, message: message, details: lines.joined(separator: "\n"))
    }
}



/// An input problem found before anything was sent (exit status 2).
public struct KenshoInputError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
