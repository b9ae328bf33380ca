import ChildProcess
import Foundation

/// Run metadata taken from the CI system's variables, for what `run.json` does not say itself.
public struct CIMetadata: Sendable, Equatable {
    public var provider: String
    public var externalRunId: String?
    public var branch: String?
    public var commit: String?
    public var buildURL: String?

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
            return CIMetadata(
                provider: "gitlab-ci", externalRunId: v("CI_JOB_ID").map { "gitlab-\($0)" },
                branch: v("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") ?? v("CI_COMMIT_REF_NAME"), commit: v("CI_COMMIT_SHA"),
                buildURL: v("CI_JOB_URL"))
        }
        if v("JENKINS_URL") != nil {
            return CIMetadata(
                provider: "jenkins", externalRunId: v("BUILD_TAG").map { "jenkins-\($0)" },
                branch: v("CHANGE_BRANCH") ?? v("BRANCH_NAME") ?? v("GIT_BRANCH").map { $0.replacingOccurrences(of: "origin/", with: "") },
                commit: v("GIT_COMMIT"), buildURL: v("BUILD_URL"))
        }
        if v("CIRCLECI") == "true" {
            return CIMetadata(
                provider: "circleci",
                externalRunId: (v("CIRCLE_WORKFLOW_JOB_ID") ?? v("CIRCLE_BUILD_NUM")).map { "circle-\($0)" },
                branch: v("CIRCLE_BRANCH"), commit: v("CIRCLE_SHA1"), buildURL: v("CIRCLE_BUILD_URL"))
        }
        if v("BUILDKITE") == "true" {
            return CIMetadata(
                provider: "buildkite",
                externalRunId: v("BUILDKITE_JOB_ID").map { "buildkite-\($0)" } ?? v("BUILDKITE_BUILD_ID").map { "buildkite-\($0)" },
                branch: v("BUILDKITE_BRANCH"), commit: v("BUILDKITE_COMMIT"), buildURL: v("BUILDKITE_BUILD_URL"))
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
