import Foundation

/// The kensho/v1 run document as received: every field optional and every enum a string, so a
/// document with many problems still decodes and `KenshoValidator` can report all of them with
/// JSON pointers. Only JSON that is malformed or of the wrong type fails to decode.
public struct KenshoRun: Codable, Hashable, Sendable {
    public var uploadId: String?
    public var schemaVersion: String?
    public var runId: String?
    public var project: ProjectRef?
    public var externalRunId: String?
    public var branch: String?
    public var commit: String?
    public var buildUrl: String?
    public var startedAt: String?
    public var finishedAt: String?
    public var env: [String: String]?
    public var totals: Totals?
    public var cases: [KenshoCase]?
    /// One part of a build split over parallel jobs: `index` counts from 0.
    public var shard: Shard?

    public struct Shard: Codable, Hashable, Sendable {
        public var index: Int?
        public var total: Int?
        public init(index: Int?, total: Int?) {
            self.index = index
            self.total = total
        }
    }

    public struct ProjectRef: Codable, Hashable, Sendable {
        public var slug: String?
        public init(slug: String?) { self.slug = slug }
    }

    public struct Totals: Codable, Hashable, Sendable {
        public var passed: Int?
        public var failed: Int?
        public var skipped: Int?
        public var broken: Int?
        public var flaky: Int?

        public init(passed: Int?, failed: Int?, skipped: Int?, broken: Int?, flaky: Int?) {
            self.passed = passed
            self.failed = failed
            self.skipped = skipped
            self.broken = broken
            self.flaky = flaky
        }
    }

    public init(
        uploadId: String? = nil, schemaVersion: String? = "kensho/v1", runId: String? = nil, project: ProjectRef?,
        externalRunId: String?, branch: String?, commit: String? = nil, buildUrl: String? = nil,
        startedAt: String? = nil, finishedAt: String? = nil, env: [String: String]? = nil, totals: Totals?,
        cases: [KenshoCase]?, shard: Shard? = nil
    ) {
        self.shard = shard
        self.uploadId = uploadId
        self.schemaVersion = schemaVersion
        self.runId = runId
        self.project = project
        self.externalRunId = externalRunId
        self.branch = branch
        self.commit = commit
        self.buildUrl = buildUrl
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.env = env
        self.totals = totals
        self.cases = cases
    }
}

public struct KenshoError: Codable, Hashable, Sendable {
    public var type: String?
    public var message: String?
    public var trace: String?

    public init(type: String? = nil, message: String? = nil, trace: String? = nil) {
        self.type = type
        self.message = message
        self.trace = trace
    }
}

/// One earlier attempt of a case that was retried within the run.
public struct KenshoAttempt: Codable, Hashable, Sendable {
    public var status: String?
    public var durationMs: Double?
    public var error: KenshoError?

    public init(status: String?, durationMs: Double? = nil, error: KenshoError? = nil) {
        self.status = status
        self.durationMs = durationMs
        self.error = error
    }
}

public struct KenshoStep: Codable, Hashable, Sendable {
    public var name: String?
    public var status: String?
    public var durationMs: Double?
    public var attachments: [String]?
    public var steps: [KenshoStep]?

    public init(
        name: String?, status: String?, durationMs: Double? = nil, attachments: [String]? = nil, steps: [KenshoStep]? = nil
    ) {
        self.name = name
        self.status = status
        self.durationMs = durationMs
        self.attachments = attachments
        self.steps = steps
    }
}

public struct KenshoCase: Codable, Hashable, Sendable {
    /// Explicit stable identity; when absent it is derived from suite, name and parameters.
    public var key: String?
    public var name: String?
    public var suite: String?
    public var fullName: String?
    public var file: String?
    public var status: String?
    public var durationMs: Double?
    /// Earlier attempts, oldest first; `status` is the final attempt's.
    public var retries: [KenshoAttempt]?
    public var error: KenshoError?
    public var labels: [String: String]?
    public var parameters: [String: String]?
    public var steps: [KenshoStep]?
    public var attachments: [String]?

    public init(
        key: String? = nil, name: String?, suite: String? = nil, fullName: String? = nil, file: String? = nil,
        status: String?, durationMs: Double? = nil, retries: [KenshoAttempt]? = nil, error: KenshoError? = nil,
        labels: [String: String]? = nil, parameters: [String: String]? = nil, steps: [KenshoStep]? = nil,
        attachments: [String]? = nil
    ) {
        self.key = key
        self.name = name
        self.suite = suite
        self.fullName = fullName
        self.file = file
        self.status = status
        self.durationMs = durationMs
        self.retries = retries
        self.error = error
        self.labels = labels
        self.parameters = parameters
        self.steps = steps
        self.attachments = attachments
    }
}
