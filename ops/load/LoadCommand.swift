import ArgumentParser
import Domains
import Foundation
import KaizenServer
import Logging

/// `kaizen-load`: the load harness. Every scenario starts its own Kaizen server (a child process)
/// on an embedded PostgreSQL on loopback, stops by itself, checks what it got and prints Markdown.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kaizen-load",
        abstract: "Load scenarios for Kaizen, each measured against a limit in the same run.",
        subcommands: [
            All.self, Ingest.self, Reads.self, Limits.self, TenantsCommand.self, History.self, Sustained.self, RollUps.self,
            Shards.self, Detector.self, ServerRole.self, BareRole.self,
        ],
        defaultSubcommand: All.self)
}

/// Runs scenarios on one environment; exits non-zero when a check failed.
func harness(_ body: (LoadEnvironment, Findings) async throws -> Void) async throws {
    let environment = try await LoadEnvironment.start()
    let findings = Findings()
    findings.say("# kaizen-load on \(machine()), \(Date())")
    do {
        try await body(environment, findings)
    } catch {
        await environment.stop()
        throw error
    }
    await environment.stop()
    if !findings.failures.isEmpty {
        print("\n\(findings.failures.count) check(s) failed")
        throw ExitCode(1)
    }
    print("\nall checks passed")
}

struct IngestOptions: ParsableArguments {
    @Option(help: "Concurrent CI pipelines.") var pipelines = 4
    @Option(help: "Workspaces the pipelines are spread over.") var workspaces = 2
    @Option(help: "Cases per run.") var cases = 10_000
    @Option(help: "Runs each pipeline pushes.") var runs = 5
    @Option(help: "Webhooks (run.finalized) on the first workspace's projects, delivered to a receiver on loopback.") var webhooks = 0
    @Option(help: "Live event streams held open on the first workspace (each must see its every run once, in order).") var streams = 0

    var scenario: IngestScenario {
        IngestScenario(pipelines: pipelines, workspaces: workspaces, cases: cases, runsPerPipeline: runs, webhooks: webhooks, streams: streams)
    }
}

struct ReadOptions: ParsableArguments {
    @Option(help: "Seconds of h2load per server.") var seconds = 10
    @Option(help: "h2load connections.") var connections = 8
    @Option(help: "Concurrent streams per connection.") var streams = 16
}

struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every scenario, in order.")
    @OptionGroup var ingest: IngestOptions
    @OptionGroup var reads: ReadOptions
    @Option(help: "Workspaces touched in the many-tenants scenario.") var tenants = 1_000

    func run() async throws {
        try await harness { environment, findings in
            try await ingest.scenario.run(environment, findings: findings)
            try await ReadScenario(seconds: reads.seconds, connections: reads.connections, streams: reads.streams)
                .run(environment, findings: findings)
            try await LimitsScenario(seconds: 10).run(environment, findings: findings)
            try await TenantsScenario(workspaces: tenants).run(environment, findings: findings)
        }
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CI ingestion load, against raw COPY.")
    @OptionGroup var options: IngestOptions
    func run() async throws { try await harness { try await options.scenario.run($0, findings: $1) } }
}

struct Reads: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cached authenticated reads with h2load, against a bare Hummingbird server.")
    @OptionGroup var options: ReadOptions
    func run() async throws {
        try await harness {
            try await ReadScenario(seconds: options.seconds, connections: options.connections, streams: options.streams)
                .run($0, findings: $1)
        }
    }
}

struct Limits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Clients over their rate limit next to clients within it.")
    @Option(help: "Seconds of load.") var seconds: Double = 10
    func run() async throws { try await harness { try await LimitsScenario(seconds: seconds).run($0, findings: $1) } }
}

struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tenants", abstract: "Many workspaces touched: memory per actor and eviction.")
    @Option(help: "Workspaces to touch.") var workspaces = 1_000
    func run() async throws { try await harness { try await TenantsScenario(workspaces: workspaces).run($0, findings: $1) } }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Intelligence reads over months of history (10 million case results by default).")
    @Option(help: "Runs in the seeded history.") var runs = 1_000
    @Option(help: "Cases per run.") var cases = 10_000
    @Flag(help: "Log the plans (EXPLAIN ANALYZE, BUFFERS) of the roll-ups of the runs pushed on top.") var explain = false
    @Option(help: "Where --explain writes the plans.") var explainPath = "kaizen-load-rollup-plans.txt"
    func run() async throws {
        try await harness {
            try await HistoryScenario(runs: runs, cases: cases, explain: explain, explainPath: explainPath).run($0, findings: $1)
        }
    }
}

struct Sustained: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pipelines pushing back to back for minutes: cases/s, roll-up lag and queue depth, then a recomputation check.")
    @Option(help: "Minutes of pushing.") var minutes: Double = 5
    @Option(help: "Concurrent CI pipelines, each its own project.") var pipelines = 4
    @Option(help: "Workspaces the pipelines are spread over.") var workspaces = 2
    @Option(help: "Cases per run.") var cases = 10_000
    func run() async throws {
        try await harness {
            try await SustainedScenario(minutes: minutes, pipelines: pipelines, workspaces: workspaces, cases: cases)
                .run($0, findings: $1)
        }
    }
}

struct RollUps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollups", abstract: "Roll-up time against finalize time, first pushes against later ones, memory.")
    @Option(parsing: .upToNextOption, help: "Run sizes, in cases.") var sizes: [Int] = [10_000, 50_000, 100_000]
    func run() async throws { try await harness { try await RollUpScenario(sizes: sizes).run($0, findings: $1) } }
}

struct Shards: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards", abstract: "A run assembled from shards finalizing at once, against the same cases as one document.")
    @Option(help: "Shards per run.") var shards = 32
    @Option(help: "Cases per shard.") var cases = 2_000
    @Option(help: "Measured rounds (after a first push that fills the inventory).") var rounds = 3
    func run() async throws {
        try await harness { try await ShardScenario(shards: shards, perShard: cases, rounds: rounds).run($0, findings: $1) }
    }
}

/// The flaky verdict's quality on labelled histories; no server: it replays the roll-up's scoring path.
struct Detector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detector", abstract: "Precision, recall and F1 of the flaky verdict on labelled synthetic histories.")
    @Option(help: "Runs in each history.") var runs = 200
    @Option(parsing: .upToNextOption, help: "Seeds (one table each).") var seeds: [UInt64] = [42, 7, 1234]

    func run() async throws {
        var failed = false
        print("# Flaky detector on labelled histories (default policy), \(Date())")
        for seed in seeds {
            let report = FlakyDetectorEvaluation.evaluate(policy: .default, runs: runs, seed: seed)
            print("\n## Seed \(seed): \(report.runs) runs, \(report.infrastructureRuns) of them infrastructure failures (left out)\n")
            print("| cases | truth | flagged | median results until flagged |")
            print("|---|---|---:|---:|")
            for row in report.rows {
                print("| \(row.cases) | \(row.truth) | \(row.flagged) | \(row.medianLatency.map(String.init) ?? "—") |")
            }
            print(String(format: "\nprecision %.3f · recall %.3f · **F1 %.3f** (goal ≥ 0.95) · broken cases called flaky **%d** (goal 0)",
                         report.precision, report.recall, report.f1, report.brokenCalledFlaky))
            if report.brokenCalledFlaky > 0 || report.f1 < 0.95 { failed = true }
        }
        if failed {
            print("\nFAILED: the default policy misses its goal on at least one seed")
            throw ExitCode(1)
        }
    }
}

/// The server under test, in a child process configured by `KAIZEN_*` (like `kaizen serve`).
struct ServerRole: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_server", shouldDisplay: false)
    func run() async throws {
        let config = try KaizenConfiguration.fromEnvironment()
        var logger = Logger(label: "kaizen")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .warning
        try await KaizenServerRunner.run(config: config, logger: logger)
    }
}

struct BareRole: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_bare", shouldDisplay: false)
    @Option var port: Int
    @Option var body: String
    func run() async throws { try await BareServer.run(port: port, bodyFile: body) }
}
