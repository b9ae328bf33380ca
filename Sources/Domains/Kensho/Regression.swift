/// Regression of a run against its baseline run, by case key and final status.
///
/// - **new failure**: failing now (failed or broken) and not failing in the baseline — including a case
///   the baseline does not have. Without any baseline run, every failing case is new.
/// - **fixed**: failing in the baseline and passed now.
/// - **still failing**: failing in both.
/// Skipped cases are in no bucket, and cases that disappeared since the baseline are not counted.
public enum RegressionBucket: String, Sendable, CaseIterable, Codable {
    case newFailure = "new_failure"
    case fixed
    case stillFailing = "still_failing"

    public static func classify(current: CaseStatus, baseline: CaseStatus?) -> RegressionBucket? {
        switch (current.isFailing, baseline?.isFailing ?? false) {
        case (true, false): .newFailure
        case (true, true): .stillFailing
        case (false, true): current == .passed ? .fixed : nil
        case (false, false): nil
        }
    }
}

public struct RegressionSummary: Sendable, Hashable, Codable {
    public var newFailures = 0
    public var fixed = 0
    public var stillFailing = 0

    public init() {}

    public init(newFailures: Int, fixed: Int, stillFailing: Int) {
        self.newFailures = newFailures
        self.fixed = fixed
        self.stillFailing = stillFailing
    }

    public mutating func count(_ bucket: RegressionBucket?) {
        switch bucket {
        case .newFailure: newFailures += 1
        case .fixed: fixed += 1
        case .stillFailing: stillFailing += 1
        case nil: break
        }
    }

    /// Classifies every case of `cases` against `baseline`, the baseline run's final statuses by case key
    /// digest; `digests` are the cases' key digests in order.
    public static func compute(_ cases: [ValidatedCase], digests: [CaseKeyDigest], baseline: [CaseKeyDigest: CaseStatus]) -> (
        summary: RegressionSummary, buckets: [RegressionBucket?]
    ) {
        precondition(digests.count == cases.count, "one digest per case")
        var summary = RegressionSummary()
        var buckets: [RegressionBucket?] = []
        buckets.reserveCapacity(cases.count)
        for (index, item) in cases.enumerated() {
            let bucket = RegressionBucket.classify(current: item.status, baseline: baseline[digests[index]])
            summary.count(bucket)
            buckets.append(bucket)
        }
        return (summary, buckets)
    }
}
