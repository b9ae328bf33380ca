import Domains
import Foundation

/// The Markdown a CI job shows for a push (`kensho push --summary FILE`; in GitHub Actions the job's
/// step summary): totals, the gate's verdict, new failures linked into the report, forgiven quarantined
/// failures, and the report link. Test-supplied text is escaped, so a test name cannot become markup.
public enum JobSummary {
    public static func markdown(_ r: PushResult) -> String {
        var out: [String] = []
        let t = r.totals
        if r.status == "open", let shards = r.shards {
            out.append("### Kaizen · \(escape(r.project)) · \(escape(r.externalRunId)) — ⏳ \(shards.received) of \(shards.total) shards received")
            out.append("")
            out.append("The run's regression and quality gate come with its last shard.")
            out.append("")
            out.append("[Open the report](\(r.reportUrl))")
            return out.joined(separator: "\n") + "\n"
        }
        let verdict: String
        switch r.gate.status {
        case "failed": verdict = "❌ quality gate failed"
        case "passed": verdict = "✅ quality gate passed"
        default: verdict = r.newFailures > 0 ? "❌ \(r.newFailures) new failure\(r.newFailures == 1 ? "" : "s")" : "✅ no new failures"
        }
        out.append("### Kaizen · \(escape(r.project)) · \(escape(r.externalRunId)) — \(verdict)")
        out.append("")
        out.append("| passed | failed | broken | skipped | flaky |")
        out.append("|---:|---:|---:|---:|---:|")
        out.append("| \(t.passed) | \(t.failed) | \(t.broken) | \(t.skipped) | \(t.flaky) |")
        out.append("")
        if let shards = r.shards {
            out.append(
                r.status == "partial"
                    ? "⚠️ Closed as **partial**: \(shards.received) of \(shards.total) shards arrived before the timeout."
                    : "Assembled from \(shards.total) shards.")
            out.append("")
        }
        if r.gate.status == "failed" || r.gate.status == "passed" {
            out.append("**Quality gate: \(r.gate.status)**")
            out.append("")
            for rule in r.gate.rules {
                let limit = rule.limit.map { " (limit \(GateVerdict.figure($0)))" } ?? ""
                let figure = rule.detail.map(escape) ?? GateVerdict.figure(rule.actual)
                out.append("- \(rule.passed ? "✅" : "❌") `\(rule.rule)`: \(figure)\(limit)")
            }
            out.append("")
        }
        let baseline = r.baselineRunId.map { "compared with run `\($0)`" } ?? "the project's first run on this branch"
        out.append("**Regression** (\(baseline)): \(r.newFailures) new, \(r.fixed) fixed, \(r.stillFailing) still failing")
        out.append("")
        if !r.newFailureCases.isEmpty {
            for item in r.newFailureCases { out.append("- [\(escape(item.name))](\(item.url))") }
            if r.newFailures > r.newFailureCases.count { out.append("- … and \(r.newFailures - r.newFailureCases.count) more") }
            out.append("")
        }
        if r.gate.forgivenCount > 0 {
            out.append("**Forgiven — quarantined** (\(r.gate.forgivenCount))")
            out.append("")
            for item in r.gate.forgiven.prefix(20) { out.append("- \(escape(item.name)) (\(item.status)) — \(escape(item.reason))") }
            if r.gate.forgivenCount > min(20, r.gate.forgiven.count) { out.append("- … and more in the report") }
            out.append("")
        }
        if t.flaky > 0 {
            out.append("\(t.flaky) test\(t.flaky == 1 ? "" : "s") passed only on a retry.")
            out.append("")
        }
        out.append("[Open the report](\(r.reportUrl))")
        return out.joined(separator: "\n") + "\n"
    }

    /// Backslash-escapes every ASCII punctuation character CommonMark could read as markup, and keeps
    /// line breaks and table pipes out of a one-line item.
    public static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n", "\r": out += " "
            case "\\", "`", "*", "_", "{", "}", "[", "]", "(", ")", "#", "+", "-", ".", "!", "|", "<", ">", "~", "&", "\"", "'", "=", ":":
                out += "\\"
                out.unicodeScalars.append(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
