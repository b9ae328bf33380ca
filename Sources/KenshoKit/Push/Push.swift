import AsyncHTTPClient
import Crypto
import Domains
import Foundation
import KaizenClient
import NIOCore
import OpenAPIRuntime

/// `kensho push`: a results directory (`run.json` + `attachments/<id>`) to a Kaizen server.
public struct PushOptions: Sendable {
    public var directory: String
    public var serverURL: URL
    public var token: String
    public var project: String?
    public var workspace: String?
    public var externalRunId: String?
    public var branch: String?
    public var environment: [String: String]
    public var retry: RetryPolicy
    public var uploadConcurrency: Int
    /// Stops after this many uploads, as if interrupted (tests of resumed pushes).
    public var interruptAfterUploads: Int?
    /// Where git is asked for the branch and commit outside CI: where the user ran kensho, not the
    /// directory a conversion was written to.
    public var gitDirectory: String
    /// How long opening a connection may take before that attempt fails.
    public var connectTimeout: Duration
    /// The whole push, retries included, gives up after this.
    public var timeout: Duration
    /// This push is one part of a sharded build (`--shard`; else `KAIZEN_SHARD` or the CI system's variables).
    public var shard: ShardSpec?
    /// An open sharded run is waited for (polled) this long for its verdict; nil: not waited for.
    public var wait: Duration?

    public init(
        directory: String, serverURL: URL, token: String, project: String? = nil, workspace: String? = nil,
        externalRunId: String? = nil, branch: String? = nil, environment: [String: String] = [:],
        retry: RetryPolicy = RetryPolicy(), uploadConcurrency: Int = 4, interruptAfterUploads: Int? = nil,
        gitDirectory: String = FileManager.default.currentDirectoryPath, connectTimeout: Duration = .seconds(5),
        timeout: Duration = .seconds(300), shard: ShardSpec? = nil, wait: Duration? = nil
    ) {
        self.shard = shard
        self.wait = wait
        self.gitDirectory = gitDirectory
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.directory = directory
        self.serverURL = serverURL
        self.token = token
        self.project = project
        self.workspace = workspace
        self.externalRunId = externalRunId
        self.branch = branch
        self.environment = environment
        self.retry = retry
        self.uploadConcurrency = uploadConcurrency
        self.interruptAfterUploads = interruptAfterUploads
    }
}

/// What a push did, for the summary, `--json` and `--fail-on`.
public struct PushResult: Sendable, Codable {
    public var runId: String
    public var externalRunId: String
    public var project: String
    public var reportUrl: String
    public var replayed: Bool
    public var totals: Totals
    public var newFailures: Int
    public var fixed: Int
    public var stillFailing: Int
    public var baselineRunId: String?
    /// Names of new failures, at most `PushResult.listedNewFailures`.
    public var newFailureNames: [String]
    /// The same new failures with their page in the report.
    public var newFailureCases: [NamedCase]
    /// The project's quality gate on this run (status `none` when it has no gate for the branch).
    public var gate: Gate
    public var uploaded: Int
    public var deduplicated: Int
    public var retries: Int
    /// closed; for a sharded run `open` until its last shard arrives, or `partial`.
    public var status: String = "closed"
    public var shards: Shards?

    public struct Shards: Sendable, Codable, Equatable {
        public var received: Int
        public var total: Int
    }

    public struct NamedCase: Sendable, Codable {
        public var name: String
        public var url: String
    }

    public struct Totals: Sendable, Codable {
        public var passed, failed, skipped, broken, flaky: Int
    }

    public struct Gate: Sendable, Codable {
        public struct Rule: Sendable, Codable {
            public var rule: String
            public var limit: Double?
            public var actual: Double
            public var passed: Bool
            public var detail: String?
        }
        public struct Forgiven: Sendable, Codable {
            public var name: String
            public var status: String
            public var reason: String
        }
        /// passed, failed or none.
        public var status: String
        public var rules: [Rule]
        public var forgiven: [Forgiven]
        public var forgivenCount: Int
    }

    public static let listedNewFailures = 20
}

public struct PushInterrupted: Error, CustomStringConvertible {
    public let uploaded: Int
    public var description: String { "push interrupted after \(uploaded) uploads" }
}

public enum Push {
    /// A declared attachment on disk, hashed while read.
    struct LocalAttachment: Sendable {
        let id: String
        let path: String
        let size: Int
        let sha256: String
        let contentType: String
    }

    /// Pushes, giving up after `options.timeout` with one sentence saying how far it got.
    public static func run(_ options: PushOptions, progress: (@Sendable (String) -> Void)? = nil) async throws -> PushResult {
        // Input problems are found before any connection is made.
        let prepared = try prepare(options)
        var configuration = HTTPClient.Configuration()
        let connect = options.connectTimeout.components
        configuration.timeout = .init(
            connect: .nanoseconds(connect.seconds * 1_000_000_000 + connect.attoseconds / 1_000_000_000))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await withThrowingTaskGroup(of: PushResult?.self) { group in
                group.addTask { try await push(prepared, options: options, http: http, progress: progress) }
                group.addTask {
                    try await Task.sleep(for: options.timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    throw KenshoFailure(
                        status: nil, code: nil,
                        message: "gave up after \(options.timeout.components.seconds) s (--timeout) without a complete push to \(options.serverURL.absoluteString)")
                }
                return result
            }
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    struct Prepared: Sendable {
        let run: KenshoRun
        let project: String
        let attachments: [LocalAttachment]
    }

    /// Reads and completes run.json and hashes its attachments: everything that needs no server.
    static func prepare(_ options: PushOptions) throws -> Prepared {
        let runPath = (options.directory as NSString).appendingPathComponent("run.json")
        guard let data = FileManager.default.contents(atPath: runPath) else {
            throw KenshoInputError("no run.json in \(options.directory) (convert JUnit or Allure results first: kensho convert …)")
        }
        var run: KenshoRun
        do {
            run = try KenshoJSON.decode(Array(data))
        } catch {
            throw KenshoInputError("\(runPath) is not valid kensho/v1 JSON: \(error)")
        }
        let shard = try options.shard
            ?? options.environment["KAIZEN_SHARD"].flatMap { $0.isEmpty ? nil : $0 }.map(ShardSpec.parse)
            ?? CIMetadata.detect(options.environment)?.shard
        if let shard, shard.total > 1, options.externalRunId == nil, run.externalRunId == nil,
            CIMetadata.detect(options.environment)?.shardedRunId == nil && CIMetadata.detect(options.environment)?.externalRunId == nil
        {
            throw KenshoInputError(
                "shard \(shard.index + 1)/\(shard.total) needs the run id all parts share: pass --external-run-id (outside a CI system kensho knows)")
        }
        fillMetadata(&run, options: options, runJSON: data, shard: shard)
        guard let project = run.project?.slug, !project.isEmpty else {
            throw KenshoInputError("no project: set it in run.json, with --project or KAIZEN_PROJECT")
        }
        guard run.branch != nil else {
            throw KenshoInputError(
                "no branch: not in a CI system kensho knows, and \(options.gitDirectory) is not a git checkout on a branch; "
                    + "pass --branch (a run must never land in another branch's history)")
        }
        return Prepared(run: run, project: project, attachments: try hashAttachments(run, directory: options.directory))
    }

    static func push(
        _ prepared: Prepared, options: PushOptions, http: HTTPClient, progress: (@Sendable (String) -> Void)?
    ) async throws -> PushResult {
        var run = prepared.run
        let project = prepared.project
        let attachments = prepared.attachments
        let externalRunId = run.externalRunId ?? ""
        let log = RetryLog()
        let client = KaizenClient.make(
            serverURL: options.serverURL, token: options.token,
            middlewares: [EnvelopeMiddleware(), RetryMiddleware(policy: options.retry, log: log)], httpClient: http,
            timeout: .seconds(120))

        let initResponse = try await unwrapped { try await client.initKenshoIngest(
            body: .json(
                .init(
                    workspaceSlug: options.workspace, projectSlug: project, externalRunId: externalRunId,
                    attachments: attachments.map {
                        .init(id: $0.id, sha256: $0.sha256, size: $0.size, contentType: $0.contentType)
                    }))) }
        let started = try initResponse.ok.body.json
        let byID = Dictionary(uniqueKeysWithValues: attachments.map { ($0.id, $0) })
        let uploaded = try await upload(
            started.presigned, files: byID, options: options, http: http, log: log, progress: progress)
        run.uploadId = started.uploadId

        let finalized = try await unwrapped {
            try await client.finalizeKenshoIngest(query: .init(workspace: options.workspace), body: .json(run))
        }.ok.body.json
        var result = try await result(
            of: Verdict(finalized), externalRunId: externalRunId, project: project, client: client, log: log)
        result.uploaded = uploaded
        result.deduplicated = started.alreadyExists.count
        return result
    }

    /// What a finalize answers, or a run read back: the parts a push's result is made of.
    struct Verdict {
        var runId: String
        var reportUrl: String
        var replayed: Bool
        var status: String
        var shards: PushResult.Shards?
        var totals: Components.Schemas.Totals
        var regression: Components.Schemas.Regression
        var gate: Components.Schemas.GateVerdict

        init(_ f: Components.Schemas.FinalizeResponse) {
            runId = f.internalRunId
            reportUrl = f.kenshoReportUrl
            replayed = f.replayed
            status = f.status.rawValue
            shards = f.shards.map { .init(received: $0.received, total: $0.total) }
            totals = f.totals
            regression = f.regression
            gate = f.gate
        }

        init(_ run: Components.Schemas.Run, replayed: Bool) {
            runId = run.id
            reportUrl = run.kenshoReportUrl
            self.replayed = replayed
            status = run.status.rawValue
            shards = run.shards.map { .init(received: $0.received, total: $0.total) }
            totals = run.totals
            regression = run.regression
            gate = run.gate
        }
    }

    /// Waits (polling, at most `options.wait`) until a sharded run's last shard closed it, and answers its
    /// verdict; the result as it was if the run is not open. Throws when the wait ends with the run still open.
    public static func awaitVerdict(
        _ pushed: PushResult, options: PushOptions, progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> PushResult {
        guard pushed.status == "open", let wait = options.wait else { return pushed }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        let log = RetryLog()
        let client = KaizenClient.make(
            serverURL: options.serverURL, token: options.token,
            middlewares: [EnvelopeMiddleware(), RetryMiddleware(policy: options.retry, log: log)], httpClient: http,
            timeout: .seconds(60))
        let deadline = ContinuousClock.now + wait
        var delay: Duration = .milliseconds(500)
        var shards = pushed.shards
        while ContinuousClock.now < deadline {
            let run = try await unwrapped { try await client.getRun(path: .init(runId: pushed.runId)) }.ok.body.json
            if run.status != .open {
                var result = try await result(
                    of: Verdict(run, replayed: pushed.replayed), externalRunId: pushed.externalRunId, project: pushed.project,
                    client: client, log: log)
                result.uploaded = pushed.uploaded
                result.deduplicated = pushed.deduplicated
                result.retries += pushed.retries
                return result
            }
            shards = run.shards.map { .init(received: $0.received, total: $0.total) }
            progress?("waiting for the run's other shards: \(shards.map { "\($0.received)/\($0.total)" } ?? "?") received")
            try await Task.sleep(for: min(delay, deadline - ContinuousClock.now))
            delay = min(delay * 2, .seconds(5))
        }
        throw KenshoFailure(
            status: nil, code: nil,
            message: "run \(pushed.runId) is still open after \(wait.components.seconds) s (--wait-timeout): "
                + "\(shards.map { "\($0.received) of \($0.total)" } ?? "not all") shards arrived")
    }

    static func result(
        of finalized: Verdict, externalRunId: String, project: String, client: Client, log: RetryLog
    ) async throws -> PushResult {
        var names: [String] = []
        var linked: [PushResult.NamedCase] = []
        if finalized.regression.newFailures > 0 {
            let page = try await unwrapped {
                try await client.listRunRegression(
                    path: .init(runId: finalized.runId),
                    query: .init(bucket: .newFailure, limit: PushResult.listedNewFailures))
            }.ok.body.json
            names = page.items.map { item in [item.suite, item.name].compactMap { $0 }.joined(separator: " › ") }
            linked = zip(names, page.items).map { .init(name: $0, url: "\(finalized.reportUrl)/cases/\($1.caseId)") }
        }
        let baseline = finalized.regression.baseline.value as? [String: (any Sendable)?]
        let baselineID = baseline?["id"] as? String
        let t = finalized.totals
        let totals = PushResult.Totals(passed: t.passed, failed: t.failed, skipped: t.skipped, broken: t.broken, flaky: t.flaky)
        let regression = finalized.regression
        let retries = log.retried.values.reduce(0, +)
        var result = PushResult(
            runId: finalized.runId, externalRunId: externalRunId, project: project,
            reportUrl: finalized.reportUrl, replayed: finalized.replayed, totals: totals,
            newFailures: regression.newFailures, fixed: regression.fixed, stillFailing: regression.stillFailing,
            baselineRunId: baselineID, newFailureNames: names, newFailureCases: linked,
            gate: PushResult.Gate(
                status: finalized.gate.status.rawValue,
                rules: finalized.gate.rules.map { .init(rule: $0.rule, limit: $0.limit, actual: $0.actual, passed: $0.passed, detail: $0.detail) },
                forgiven: finalized.gate.forgiven.map { .init(name: $0.name, status: $0.status.rawValue, reason: $0.reason) },
                forgivenCount: finalized.gate.forgivenCount),
            uploaded: 0, deduplicated: 0, retries: retries)
        result.status = finalized.status
        result.shards = finalized.shards
        return result
    }

    /// The generated client wraps what its middlewares throw; the user should see the failure itself.
    static func unwrapped<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as ClientError {
            if let failure = error.underlyingError as? KenshoFailure { throw failure }
            if error.underlyingError is CancellationError { throw CancellationError() }
            throw KenshoFailure(status: nil, code: nil, message: "\(error.operationID) failed: \(TransportProblem.describe(error.underlyingError))")
        }
    }

    /// Fills what run.json leaves out: flags first, then the CI system's variables, then git; a
    /// local run without an id gets one derived from its content, so pushing it again is idempotent.
    static func fillMetadata(_ run: inout KenshoRun, options: PushOptions, runJSON: Data, shard: ShardSpec?) {
        let env = options.environment
        let ci = CIMetadata.detect(env) ?? CIMetadata.fromGit(directory: options.gitDirectory)
        if run.schemaVersion == nil { run.schemaVersion = "kensho/v1" }
        if let project = options.project ?? (run.project?.slug == nil ? env["KAIZEN_PROJECT"] : nil) {
            run.project = .init(slug: project)
        }
        if let id = options.externalRunId { run.externalRunId = id }
        if let shard = shard, shard.total > 1 {
            run.shard = .init(index: shard.index, total: shard.total)
            // Every part must name the same run: the CI system's id of the whole build, not of this job.
            if run.externalRunId == nil { run.externalRunId = ci?.shardedRunId ?? ci?.externalRunId }
        }
        if run.externalRunId == nil {
            run.externalRunId = ci?.externalRunId
                ?? "local-" + Hex.string(SHA256.hash(data: runJSON).prefix(8))
        }
        if let branch = options.branch { run.branch = branch }
        // Unknown stays unknown: `prepare` refuses it rather than filing the run under a guessed branch.
        if run.branch == nil { run.branch = ci?.branch }
        if run.commit == nil { run.commit = ci?.commit }
        if run.buildUrl == nil { run.buildUrl = ci?.buildURL }
    }

    /// Attachment ids referenced by the run, read from `attachments/<id>` and hashed in 1 MiB chunks.
    static func hashAttachments(_ run: KenshoRun, directory: String) throws -> [LocalAttachment] {
        var ids: [String] = []
        var seen: Set<String> = []
        func add(_ list: [String]?) { for id in list ?? [] where seen.insert(id).inserted { ids.append(id) } }
        func walk(_ steps: [KenshoStep]?) {
            for step in steps ?? [] {
                add(step.attachments)
                walk(step.steps)
            }
        }
        for item in run.cases ?? [] {
            add(item.attachments)
            walk(item.steps)
        }
        let folder = (directory as NSString).appendingPathComponent("attachments")
        return try ids.map { id in
            let path = (folder as NSString).appendingPathComponent(id)
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw KenshoInputError("attachment '\(id)' is referenced by run.json but \(path) does not exist")
            }
            defer { try? handle.close() }
            var hasher = SHA256()
            var size = 0
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                size += chunk.count
            }
            let digest = Hex.string(hasher.finalize())
            return LocalAttachment(id: id, path: path, size: size, sha256: digest, contentType: contentType(of: id))
        }
    }

    static func contentType(of name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "txt", "log": "text/plain"
        case "json": "application/json"
        case "xml": "application/xml"
        case "html", "htm": "text/html"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "svg": "image/svg+xml"
        case "webm": "video/webm"
        case "mp4": "video/mp4"
        case "zip": "application/zip"
        default: "application/octet-stream"
        }
    }

    /// PUTs the files init asked for, at most `uploadConcurrency` at a time, each retried like API calls.
    static func upload(
        _ targets: [Components.Schemas.PresignedUpload], files: [String: LocalAttachment], options: PushOptions,
        http: HTTPClient, log: RetryLog, progress: (@Sendable (String) -> Void)?
    ) async throws -> Int {
        let total = targets.count
        var done = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = targets.makeIterator()
            func startNext() -> Bool {
                guard let target = pending.next(), let file = files[target.id] else { return false }
                group.addTask { try await put(target, file: file, http: http, retry: options.retry, log: log) }
                return true
            }
            for _ in 0..<max(1, options.uploadConcurrency) where !startNext() { break }
            while try await group.next() != nil {
                done += 1
                progress?("uploaded \(done)/\(total) attachments")
                if let limit = options.interruptAfterUploads, done >= limit, done < total {
                    group.cancelAll()
                    throw PushInterrupted(uploaded: done)
                }
                _ = startNext()
            }
        }
        return done
    }

    static func put(
        _ target: Components.Schemas.PresignedUpload, file: LocalAttachment, http: HTTPClient, retry: RetryPolicy,
        log: RetryLog
    ) async throws {
        try await retry.perform(
            log: log, canRetry: TransportProblem.canSucceedLater,
            giveUp: {
                KenshoFailure(
                    status: nil, code: nil,
                    message: "upload of attachment '\(file.id)' to \(target.url) failed: \(TransportProblem.describe($0))")
            }
        ) { () -> RetryPolicy.Attempt<Void> in
            var request = HTTPClientRequest(url: target.url)
            request.method = .PUT
            for (name, value) in target.fields?.additionalProperties ?? [:] { request.headers.replaceOrAdd(name: name, value: value) }
            request.headers.replaceOrAdd(name: "Content-Length", value: String(file.size))
            let data = try Data(contentsOf: URL(fileURLWithPath: file.path), options: .mappedIfSafe)
            request.body = .bytes(ByteBuffer(bytes: data))
            let response = try await http.execute(request, timeout: .seconds(600))
            log.reached()
            let body = try await response.body.collect(upTo: 1 << 20)
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .done(()) }
            let refused = KenshoFailure(
                status: status, code: nil,
                message: "upload of attachment '\(file.id)' refused: \(String(buffer: body).prefix(300))")
            guard RetryPolicy.retryable(status: status) else { throw refused }
            return .retryable(
                status: status, retryAfter: response.headers.first(name: "retry-after").flatMap(Double.init),
                exhausted: .failure(refused))
        }
    }
}
