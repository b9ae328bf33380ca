import ChildProcess
import Domains
import Foundation

/// Run metadata taken from the CI system's variables, for what `run.json` does not say itself.
public struct CIMetadata: Sendable, Equatable {
    public var provider: String
    public var externalRunId: String?
    public var branch: String?
    public var commit: String?
    public var buildURL: String?
    /// This job's part of a build split over parallel jobs (index from 0), and the run id every part shares.
    public var shard: ShardSpec?
    public var shardedRunId: String?

    /// GitHub Actions, GitLab CI, Jenkins, CircleCI, Buildkite and Azure Pipelines, in that order;
    /// nil outside CI.
    public static func detect(_ env: [String: String]) -> CIMetadata? {
        func v(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
        if v("GITHUB_ACTIONS") == "true" {
            let runURL = v("GITHUB_RUN_ID").map { "\(v("GITHUB_SERVER_URL") ?? "https://github.com")/\(v("GITHUB_REPOSITORY") ?? "")/actions/runs/\($0)" }
            return CIMetadata(
                provider: "github-actions",
                externalRunId: v("GITHUB_RUN_ID").map { "gha-\($0)-\(v("GITHUB_RUN_ATTEMPT") ?? "1")-\(v("GITHUB_JOB") ?? "job")" },
                branch: v("GITHUB_HEAD_REF") ?? v("GITHUB_REF_NAME"), commit: v("GITHUB_SHA"), buildURL: runURL)
        }
        if v("GITLAB_CI") != nil {
            // `parallel: N` jobs are named "test 2/8": the name without that suffix is the same in every part.
            let jobName = v("CI_JOB_NAME").map { $0.replacingOccurrences(of: #" \d+/\d+$"#, with: "", options: .regularExpression) }
            return CIMetadata(
                provider: "gitlab-ci", externalRunId: v("CI_JOB_ID").map { "gitlab-\($0)" },
                branch: v("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") ?? v("CI_COMMIT_REF_NAME"), commit: v("CI_COMMIT_SHA"),
                buildURL: v("CI_JOB_URL"),
                shard: ShardSpec.oneBased(v("CI_NODE_INDEX"), v("CI_NODE_TOTAL")),
                shardedRunId: v("CI_PIPELINE_ID").map { "gitlab-\($0)-\(jobName ?? "job")" })
        }
        if v("JENKINS_URL") != nil {
            return CIMetadata(
                provider: "jenkins", externalRunId: v("BUILD_TAG").map { "jenkins-\($0)" },
                branch: v("CHANGE_BRANCH") ?? v("BRANCH_NAME") ?? v("GIT_BRANCH").map { $0.replacingOccurrences(of: "origin/", with: "") },
                commit: v("GIT_COMMIT"), buildURL: v("BUILD_URL"))
        }
        if v("CIRCLECI") == "true" {
            // Parallel containers of one job share its workflow job id and build number.
            let id = (v("CIRCLE_WORKFLOW_JOB_ID") ?? v("CIRCLE_BUILD_NUM")).map { "circle-\($0)" }
            return CIMetadata(
                provider: "circleci", externalRunId: id,
                branch: v("CIRCLE_BRANCH"), commit: v("CIRCLE_SHA1"), buildURL: v("CIRCLE_BUILD_URL"),
                shard: ShardSpec.zeroBased(v("CIRCLE_NODE_INDEX"), v("CIRCLE_NODE_TOTAL")), shardedRunId: id)
        }
        if v("BUILDKITE") == "true" {
            return CIMetadata(
                provider: "buildkite",
                externalRunId: v("BUILDKITE_JOB_ID").map { "buildkite-\($0)" } ?? v("BUILDKITE_BUILD_ID").map { "buildkite-\($0)" },
                branch: v("BUILDKITE_BRANCH"), commit: v("BUILDKITE_COMMIT"), buildURL: v("BUILDKITE_BUILD_URL"),
                shard: ShardSpec.zeroBased(v("BUILDKITE_PARALLEL_JOB"), v("BUILDKITE_PARALLEL_JOB_COUNT")),
                // The parallel jobs of a step share the step's id.
                shardedRunId: v("BUILDKITE_BUILD_ID").map { "buildkite-\($0)-\(v("BUILDKITE_STEP_ID") ?? "step")" })
        }
        if v("TF_BUILD")?.lowercased() == "true" {
            let url = v("BUILD_BUILDID").flatMap { id in
                v("SYSTEM_COLLECTIONURI").map { "\($0)\(v("SYSTEM_TEAMPROJECT") ?? "")/_build/results?buildId=\(id)" }
            }
            let branch = v("SYSTEM_PULLREQUEST_SOURCEBRANCH") ?? v("BUILD_SOURCEBRANCH")
            return CIMetadata(
                provider: "azure-pipelines",
                externalRunId: v("BUILD_BUILDID").map { "azure-\($0)-\(v("SYSTEM_JOBID") ?? "job")" },
                branch: branch.map { $0.replacingOccurrences(of: "refs/heads/", with: "") }, commit: v("BUILD_SOURCEVERSION"),
                buildURL: url)
        }
        return nil
    }

    public init(
        provider: String, externalRunId: String?, branch: String?, commit: String?, buildURL: String?, shard: ShardSpec? = nil,
        shardedRunId: String? = nil
    ) {
        self.provider = provider
        self.externalRunId = externalRunId
        self.branch = branch
        self.commit = commit
        self.buildURL = buildURL
        self.shard = shard
        self.shardedRunId = shardedRunId
    }

    /// Branch and commit from the git work tree at `directory`, for pushes outside CI.
    public static func fromGit(directory: String) -> CIMetadata? {
        func git(_ arguments: [String]) -> String? {
            guard let result = try? ChildProcess.run(["git", "-C", directory] + arguments), result.status == 0 else {
                return nil
            }
            let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        }
        guard let commit = git(["rev-parse", "HEAD"]) else { return nil }
        let branch = git(["rev-parse", "--abbrev-ref", "HEAD"]).flatMap { $0 == "HEAD" ? nil : $0 }
        return CIMetadata(provider: "git", externalRunId: nil, branch: branch, commit: commit, buildURL: nil)
    }
}

/// Which part of a sharded build this push is: `index` counts from 0, below `total`.
public struct ShardSpec: Sendable, Equatable, Codable {
    public var index: Int
    public var total: Int

    public init(index: Int, total: Int) {
        self.index = index
        self.total = total
    }

    /// "2/8" as people and `--shard`/`KAIZEN_SHARD` write it: the second of eight, counting from 1.
    public static func parse(_ text: String) throws -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0].trimmingCharacters(in: .whitespaces)),
            let n = Int(parts[1].trimmingCharacters(in: .whitespaces))
        else { throw KenshoInputError("shard '\(text)' is not K/N (e.g. 2/8: the second of eight, counting from 1)") }
        guard n >= 1, n <= RunShard.maxTotal else { throw KenshoInputError("shard '\(text)': N must be 1–\(RunShard.maxTotal)") }
        guard k >= 1, k <= n else { throw KenshoInputError("shard '\(text)': K must be 1–\(n) (shards count from 1 here)") }
        return ShardSpec(index: k - 1, total: n)
    }

    static func oneBased(_ index: String?, _ total: String?) -> ShardSpec? {
        guard let i = index.flatMap(Int.init), let n = total.flatMap(Int.init), n > 1, i >= 1, i <= n else { return nil }
        return ShardSpec(index: i - 1, total: n)
    }

    static func zeroBased(_ index: String?, _ total: String?) -> ShardSpec? {
        guard let i = index.flatMap(Int.init), let n = total.flatMap(Int.init), n > 1, i >= 0, i < n else { return nil }
        return ShardSpec(index: i, total: n)
    }
}
