import ArgumentParser
import Domains
import Foundation
import KenshoKit

#if canImport(Glibc)
import Glibc
#endif

/// `kensho`: push test results to Kaizen from any CI in one line.
@main
struct KenshoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kensho",
        abstract: "Push test results to Kaizen; convert JUnit XML and Allure results to kensho/v1.",
        subcommands: [PushCommand.self, ConvertCommand.self, QuarantineCommand.self],
        defaultSubcommand: PushCommand.self)
}

enum FailOn: String, ExpressibleByArgument, CaseIterable {
    case gate
    case newFailures = "new-failures"
    case failures
    case never
}

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push a results directory (run.json + attachments/), or JUnit/Allure results converted on the fly.",
        discussion: """
            Exit status: 0 pushed (and --fail-on not triggered), 1 --fail-on triggered, 2 usage or input error
            (no run.json, no project, no branch, unreadable results), 3 the server refused the push or could not
            be reached (or --wait ended with the run still open).

            Sharded builds: each parallel job pushes its part with the same external run id and --shard K/N
            (or KAIZEN_SHARD=K/N; in GitLab CI, Buildkite and CircleCI the parallel job's own variables are read).
            The run's regression and gate come with the last part; an earlier part prints `open, k/N received`
            and exits 0 unless --wait makes it wait for the verdict.
            """)

    @Argument(help: "Results directory with run.json and attachments/.") var directory = "./kensho-results"
    @Option(help: "Kaizen server URL (or KAIZEN_URL).") var url: String?
    @Option(help: "API token (or KAIZEN_TOKEN).") var token: String?
    @Option(help: "Project slug, when run.json has none (or KAIZEN_PROJECT).") var project: String?
    @Option(help: "Workspace slug, when the token can act in several.") var workspace: String?
    @Option(help: "External run id (default: from the CI system, else derived from the results).") var externalRunId: String?
    @Option(help: "Branch (or KAIZEN_BRANCH; default: from run.json, the CI system or git).") var branch: String?
    @Option(help: "Convert these JUnit XML files (globs allowed) instead of reading DIRECTORY/run.json.") var junit: [String] = []
    @Option(help: "Convert this allure-results directory instead of reading DIRECTORY/run.json.") var allure: String?
    @Option(
        help: """
            Exit 1 on: gate (the project's quality gate failed), new-failures, failures (any failing case), never. \
            Default: gate when the project has a gate for the branch, else new-failures.
            """) var failOn: FailOn?
    @Option(help: "Attempts per request on 429, 502–504 and dropped connections.") var retries = 6
    @Option(help: "Parallel attachment uploads.") var parallel = 4
    @Option(help: "Give up on the whole push after this many seconds, retries included.") var timeout = 300
    @Option(help: "Seconds to wait for a connection before that attempt fails.") var connectTimeout = 5
    @Option(help: "Where to read the branch and commit from git outside CI (default: the current directory).") var gitDir: String?
    @Option(help: "Write a Markdown summary of the push here (in GitHub Actions: appended to $GITHUB_STEP_SUMMARY unless given).")
    var summary: String?
    @Option(help: "This job's part of a sharded build, K/N counting from 1 (e.g. 2/8).") var shard: String?
    @Flag(help: "For a part of a sharded build: wait for the last part and report (and --fail-on) the whole run's verdict.")
    var wait = false
    @Option(help: "With --wait: give up after this many seconds (exit 3).") var waitTimeout = 900
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print only errors.") var quiet = false

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let shardSpec: ShardSpec?
        do {
            shardSpec = try shard.map(ShardSpec.parse)
        } catch let problem as KenshoInputError {
            throw CLIError.usage(problem.description)
        }
        guard let base = url ?? env["KAIZEN_URL"], let serverURL = URL(string: base), serverURL.scheme != nil else {
            throw CLIError.usage("set the server with --url or KAIZEN_URL (e.g. https://kaizen.example.com)")
        }
        guard let token = token ?? env["KAIZEN_TOKEN"], !token.isEmpty else {
            throw CLIError.usage("set an API token with --token or KAIZEN_TOKEN")
        }
        var source = directory
        do {
            if !junit.isEmpty || allure != nil {
                let converted = try allure.map { try AllureConverter.convert(directory: $0) }
                    ?? JUnitConverter.convert(files: try files(junit))
                source = NSTemporaryDirectory() + "kensho-\(UUID().uuidString)"
                try converted.write(to: source)
            }
        } catch let error as ConversionError {
            throw CLIError.input(error.description)
        }
        defer { if source != directory { try? FileManager.default.removeItem(atPath: source) } }

        let interactive = isatty(1) == 1 && !quiet && !json
        let options = PushOptions(
            directory: source, serverURL: serverURL, token: token, project: project, workspace: workspace,
            externalRunId: externalRunId, branch: branch ?? env["KAIZEN_BRANCH"].flatMap { $0.isEmpty ? nil : $0 },
            environment: env, retry: RetryPolicy(attempts: retries), uploadConcurrency: parallel,
            gitDirectory: gitDir ?? FileManager.default.currentDirectoryPath,
            connectTimeout: .seconds(max(1, connectTimeout)), timeout: .seconds(max(1, timeout)), shard: shardSpec,
            wait: wait ? .seconds(max(1, waitTimeout)) : nil)
        var result: PushResult
        do {
            let progress: (@Sendable (String) -> Void)? = interactive ? { @Sendable line in Terminal.progress(line) } : nil
            result = try await Push.run(options, progress: progress)
            result = try await Push.awaitVerdict(result, options: options, progress: progress)
        } catch let failure as KenshoFailure {
            if interactive { Terminal.progress("") }
            throw CLIError.server(failure.description)
        } catch let problem as KenshoInputError {
            if interactive { Terminal.progress("") }
            throw CLIError.input(problem.description)
        }
        if interactive { Terminal.progress("") }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else if !quiet {
            print(Summary.text(result))
        }
        try writeSummary(result, env: env)
        // An open run has no verdict yet: the part that completes it (or --wait) answers for the build.
        if result.status == "open" { return }
        let failing = result.totals.failed + result.totals.broken
        switch failOn ?? (result.gate.status == "none" ? .newFailures : .gate) {
        case .gate where result.gate.status == "failed": throw ExitCode(1)
        case .newFailures where result.newFailures > 0: throw ExitCode(1)
        case .failures where failing > 0: throw ExitCode(1)
        default: break
        }
    }

    /// `--summary FILE` is written; in GitHub Actions without it the step summary is appended to.
    func writeSummary(_ result: PushResult, env: [String: String]) throws {
        let markdown = Data(JobSummary.markdown(result).utf8)
        if let summary {
            do {
                try markdown.write(to: URL(fileURLWithPath: summary))
            } catch {
                throw CLIError.input("could not write the summary to \(summary): \(error.localizedDescription)")
            }
        } else if env["GITHUB_ACTIONS"] == "true", let path = env["GITHUB_STEP_SUMMARY"], !path.isEmpty,
            let handle = FileHandle(forWritingAtPath: path)
        {
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: markdown)
        }
    }

    func files(_ patterns: [String]) throws -> [String] {
        let found = Glob.expand(patterns)
        guard !found.isEmpty else { throw CLIError.input("no JUnit files match \(patterns.joined(separator: " "))") }
        return found
    }
}

struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "What a project has quarantined, for runners that prefer to skip it.",
        subcommands: [List.self])

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json, pytest, junit
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Print the project's quarantined cases.",
            discussion: """
                --format pytest prints one --deselect=<node id> per line (node ids derived from the JUnit class names \
                pytest writes), for `pytest $(kensho quarantine list --format pytest)`; --format junit prints a JUnit \
                XML file with each case skipped and its reason.
                """)
        @Option(help: "Kaizen server URL (or KAIZEN_URL).") var url: String?
        @Option(help: "API token (or KAIZEN_TOKEN).") var token: String?
        @Option(help: "Project slug (or KAIZEN_PROJECT).") var project: String?
        @Option(help: "Workspace slug, when the token can act in several.") var workspace: String?
        @Option(help: "json, pytest or junit.") var format: Format = .json

        func run() async throws {
            let env = ProcessInfo.processInfo.environment
            guard let base = url ?? env["KAIZEN_URL"], let serverURL = URL(string: base), serverURL.scheme != nil else {
                throw CLIError.usage("set the server with --url or KAIZEN_URL (e.g. https://kaizen.example.com)")
            }
            guard let token = token ?? env["KAIZEN_TOKEN"], !token.isEmpty else {
                throw CLIError.usage("set an API token with --token or KAIZEN_TOKEN")
            }
            guard let project = project ?? env["KAIZEN_PROJECT"], !project.isEmpty else {
                throw CLIError.usage("name the project with --project or KAIZEN_PROJECT")
            }
            let items: [QuarantinedCase]
            do {
                items = try await QuarantineList.fetch(serverURL: serverURL, token: token, project: project, workspace: workspace)
            } catch let failure as KenshoFailure {
                throw CLIError.server(failure.description)
            }
            switch format {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(items), as: UTF8.self))
            case .pytest:
                for item in items { print("--deselect=\(QuarantineList.pytestNodeID(item))") }
            case .junit:
                print(QuarantineList.junit(items), terminator: "")
            }
        }
    }
}

struct ConvertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Convert test results to a kensho/v1 results directory.",
        subcommands: [JUnit.self, Allure.self])

    struct JUnit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "junit", abstract: "JUnit XML files (globs allowed) to run.json + attachments/.")
        @Argument(help: "JUnit XML files or globs, e.g. 'build/test-results/**/*.xml'.") var files: [String]
        @Option(name: .shortAndLong, help: "Output directory.") var output = "./kensho-results"

        func run() async throws {
            let found = Glob.expand(files)
            guard !found.isEmpty else { throw CLIError.input("no JUnit files match \(files.joined(separator: " "))") }
            do {
                let converted = try JUnitConverter.convert(files: found)
                try converted.write(to: output)
                print(Summary.converted(converted, into: output, from: "\(found.count) JUnit file(s)"))
            } catch let error as ConversionError {
                throw CLIError.input(error.description)
            }
        }
    }

    struct Allure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "allure", abstract: "An allure-results directory to run.json + attachments/.")
        @Argument(help: "The allure-results directory.") var directory: String
        @Option(name: .shortAndLong, help: "Output directory.") var output = "./kensho-results"

        func run() async throws {
            do {
                let converted = try AllureConverter.convert(directory: directory)
                try converted.write(to: output)
                print(Summary.converted(converted, into: output, from: directory))
            } catch let error as ConversionError {
                throw CLIError.input(error.description)
            }
        }
    }
}

/// Errors shown as one line (no stack trace), with the documented exit status.
enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    case input(String)
    case server(String)

    var description: String {
        switch self {
        case .usage(let message), .input(let message), .server(let message): "kensho: \(message)"
        }
    }
}

enum Terminal {
    /// Rewrites one status line on a terminal.
    static func progress(_ line: String) {
        FileHandle.standardOutput.write(Data("\r\u{1B}[2K\(line)".utf8))
    }
}

enum Summary {
    static func text(_ r: PushResult) -> String {
        var lines: [String] = []
        let t = r.totals
        if r.status == "open", let shards = r.shards {
            lines.append(
                "\(r.replayed ? "Already pushed" : "Pushed") a shard of \(r.externalRunId) to \(r.project): the run is open, "
                    + "\(shards.received) of \(shards.total) shards received")
            lines.append("Its regression and quality gate come with the last shard (kensho push --wait waits for them).")
            lines.append("Report: \(r.reportUrl)")
            return lines.joined(separator: "\n")
        }
        let assembled = r.shards.map { " (\($0.received) of \($0.total) shards\(r.status == "partial" ? ", closed as partial" : ""))" } ?? ""
        lines.append(
            "\(r.replayed ? "Already pushed" : "Pushed") \(r.externalRunId)\(assembled) to \(r.project): \(t.passed) passed, \(t.failed) failed, "
                + "\(t.broken) broken, \(t.skipped) skipped\(t.flaky > 0 ? ", \(t.flaky) flaky" : "")")
        lines.append(
            "Regression vs \(r.baselineRunId ?? "nothing (first run)"): \(count(r.newFailures, "new failure")), \(r.fixed) fixed, \(r.stillFailing) still failing")
        for name in r.newFailureNames { lines.append("  ✗ \(name)") }
        if r.newFailures > r.newFailureNames.count { lines.append("  … and \(r.newFailures - r.newFailureNames.count) more") }
        switch r.gate.status {
        case "passed": lines.append("Quality gate: passed")
        case "failed":
            lines.append("Quality gate: FAILED")
            for rule in r.gate.rules where !rule.passed {
                let limit = rule.limit.map { " (limit \(GateVerdict.figure($0)))" } ?? ""
                lines.append("  ✗ \(rule.rule): \(rule.detail ?? GateVerdict.figure(rule.actual))\(limit)")
            }
        default: break
        }
        if r.gate.forgivenCount > 0 {
            lines.append("Forgiven (quarantined): \(count(r.gate.forgivenCount, "failure"))")
            for item in r.gate.forgiven.prefix(10) { lines.append("  ~ \(item.name) — \(item.reason)") }
        }
        if r.uploaded + r.deduplicated > 0 {
            lines.append("Attachments: \(r.uploaded) uploaded, \(r.deduplicated) already stored")
        }
        lines.append("Report: \(r.reportUrl)")
        return lines.joined(separator: "\n")
    }

    /// "1 new failure", "2 new failures".
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    static func converted(_ run: ConvertedRun, into directory: String, from source: String) -> String {
        let t = run.run.totals
        return "Converted \(source): \(run.run.cases?.count ?? 0) cases (\(t?.passed ?? 0) passed, \(t?.failed ?? 0) failed, "
            + "\(t?.broken ?? 0) broken, \(t?.skipped ?? 0) skipped), \(run.attachments.count) attachments → \(directory)"
    }
}

extension KenshoCommand {
    /// Maps errors to the documented exit statuses and prints them as one line.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            switch error {
            case .usage, .input: Foundation.exit(2)
            case .server: Foundation.exit(3)
            }
        } catch {
            exit(withError: error)
        }
    }
}
