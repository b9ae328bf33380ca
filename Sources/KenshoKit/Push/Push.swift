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

    public init(
        directory: String, serverURL: URL, token: String, project: String? = nil, workspace: String? = nil,
        externalRunId: String? = nil, branch: String? = nil, environment: [String: String] = [:],
        retry: RetryPolicy = RetryPolicy(), uploadConcurrency: Int = 4, interruptAfterUploads: Int? = nil
    ) {
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
    public var uploaded: Int
    public var deduplicated: Int
    public var retries: Int

    public struct Totals: Sendable, Codable {
        public var passed, failed, skipped, broken, flaky: Int
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

    public static func run(_ options: PushOptions, progress: (@Sendable (String) -> Void)? = nil) async throws -> PushResult {
        let runPath = (options.directory as NSString).appendingPathComponent("run.json")
        guard let data = FileManager.default.contents(atPath: runPath) else {
            throw KenshoFailure(status: nil, code: nil, message: "no run.json in \(options.directory) (convert JUnit or Allure results first: kensho convert …)")
        }
        var run: KenshoRun
        do {
            run = try KenshoJSON.decode(Array(data))
        } catch {
            throw KenshoFailure(status: nil, code: nil, message: "\(runPath) is not valid JSON: \(error)")
        }
        fillMetadata(&run, options: options, runJSON: data)
        guard let project = run.project?.slug, !project.isEmpty else {
            throw KenshoFailure(status: nil, code: nil, message: "no project: set it in run.json, with --project or KAIZEN_PROJECT")
        }
        let externalRunId = run.externalRunId ?? ""
        let attachments = try hashAttachments(run, directory: options.directory)

        let log = RetryLog()
        let client = KaizenClient.make(
            serverURL: options.serverURL, token: options.token,
            middlewares: [EnvelopeMiddleware(), RetryMiddleware(policy: options.retry, log: log)])

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
            started.presigned, files: byID, options: options, log: log, progress: progress)
        run.uploadId = started.uploadId

        let finalized = try await unwrapped {
            try await client.finalizeKenshoIngest(query: .init(workspace: options.workspace), body: .json(run))
        }.ok.body.json
        var names: [String] = []
        if finalized.regression.newFailures > 0 {
            let page = try await unwrapped {
                try await client.listRunRegression(
                    path: .init(runId: finalized.internalRunId),
                    query: .init(bucket: .newFailure, limit: PushResult.listedNewFailures))
            }.ok.body.json
            names = page.items.map { item in [item.suite, item.name].compactMap { $0 }.joined(separator: " › ") }
        }
        let baseline = finalized.regression.baseline.value as? [String: (any Sendable)?]
        let baselineID = baseline?["id"] as? String
        let t = finalized.totals
        let totals = PushResult.Totals(passed: t.passed, failed: t.failed, skipped: t.skipped, broken: t.broken, flaky: t.flaky)
        let regression = finalized.regression
        let retries = log.retried.values.reduce(0, +)
        return PushResult(
            runId: finalized.internalRunId, externalRunId: externalRunId, project: project,
            reportUrl: finalized.kenshoReportUrl, replayed: finalized.replayed, totals: totals,
            newFailures: regression.newFailures, fixed: regression.fixed, stillFailing: regression.stillFailing,
            baselineRunId: baselineID, newFailureNames: names, uploaded: uploaded,
            deduplicated: started.alreadyExists.count, retries: retries)
    }

    /// The generated client wraps what its middlewares throw; the user should see the failure itself.
    static func unwrapped<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as ClientError {
            if let failure = error.underlyingError as? KenshoFailure { throw failure }
            if error.underlyingError is CancellationError { throw CancellationError() }
            throw KenshoFailure(status: nil, code: nil, message: "\(error.operationID): \(error.underlyingError)")
        }
    }

    /// Fills what run.json leaves out: flags first, then the CI system's variables, then git; a
    /// local run without an id gets one derived from its content, so pushing it again is idempotent.
    static func fillMetadata(_ run: inout KenshoRun, options: PushOptions, runJSON: Data) {
        let env = options.environment
        let ci = CIMetadata.detect(env) ?? CIMetadata.fromGit(directory: options.directory)
        if run.schemaVersion == nil { run.schemaVersion = "kensho/v1" }
        if let project = options.project ?? (run.project?.slug == nil ? env["KAIZEN_PROJECT"] : nil) {
            run.project = .init(slug: project)
        }
        if let id = options.externalRunId { run.externalRunId = id }
        if run.externalRunId == nil {
            run.externalRunId = ci?.externalRunId
                ?? "local-" + SHA256.hash(data: runJSON).prefix(8).map { String(format: "%02x", $0) }.joined()
        }
        if let branch = options.branch { run.branch = branch }
        if run.branch == nil { run.branch = ci?.branch ?? "main" }
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
                throw KenshoFailure(status: nil, code: nil, message: "attachment '\(id)' is referenced by run.json but \(path) does not exist")
            }
            defer { try? handle.close() }
            var hasher = SHA256()
            var size = 0
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                size += chunk.count
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
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
        log: RetryLog, progress: (@Sendable (String) -> Void)?
    ) async throws -> Int {
        let total = targets.count
        var done = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = targets.makeIterator()
            func startNext() -> Bool {
                guard let target = pending.next(), let file = files[target.id] else { return false }
                group.addTask { try await put(target, file: file, retry: options.retry, log: log) }
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

    static func put(_ target: Components.Schemas.PresignedUpload, file: LocalAttachment, retry: RetryPolicy, log: RetryLog)
        async throws
    {
        var attempt = 1
        while true {
            var request = HTTPClientRequest(url: target.url)
            request.method = .PUT
            for (name, value) in target.fields?.additionalProperties ?? [:] { request.headers.replaceOrAdd(name: name, value: value) }
            request.headers.replaceOrAdd(name: "Content-Length", value: String(file.size))
            let data = try Data(contentsOf: URL(fileURLWithPath: file.path), options: .mappedIfSafe)
            request.body = .bytes(ByteBuffer(bytes: data))
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
                let body = try await response.body.collect(upTo: 1 << 20)
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return }
                guard RetryPolicy.retryable(status: status), attempt < retry.attempts else {
                    throw KenshoFailure(
                        status: status, code: nil,
                        message: "upload of attachment '\(file.id)' refused: \(String(buffer: body).prefix(300))")
                }
                log.note(status)
                let after = response.headers.first(name: "retry-after").flatMap(Double.init)
                try await Task.sleep(for: .seconds(retry.delay(afterAttempt: attempt, retryAfter: after)))
            } catch let failure as KenshoFailure {
                throw failure
            } catch let error as CancellationError {
                throw error
            } catch {
                guard attempt < retry.attempts else {
                    throw KenshoFailure(status: nil, code: nil, message: "upload of attachment '\(file.id)' failed: \(error)")
                }
                log.note(0)
                try await Task.sleep(for: .seconds(retry.delay(afterAttempt: attempt, retryAfter: nil)))
            }
            attempt += 1
        }
    }
}
