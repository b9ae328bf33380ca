/// One stored result of a sharded run, as its close reads it back.
public struct ShardedResult: Sendable, Hashable, GateCase {
    /// Position in the run (a shard's cases follow one another).
    public let ordinal: Int
    public let caseID: String
    public let key: String
    public let name: String
    public let suite: String?
    public var status: CaseStatus
    public var durationMs: Int64
    public var attempts: Int
    public var flaky: Bool
    /// The order its shard arrived in (1, 2, …): of two results of one case, the later shard's is final.
    public var arrival: Int
    /// The bucket its shard wrote (against the baseline of the moment); the close rewrites only those it changes.
    public var storedBucket: RegressionBucket?

    public init(
        ordinal: Int, caseID: String, key: String, name: String, suite: String?, status: CaseStatus, durationMs: Int64,
        attempts: Int, flaky: Bool, arrival: Int = 0, storedBucket: RegressionBucket? = nil
    ) {
        self.arrival = arrival
        self.storedBucket = storedBucket
        self.ordinal = ordinal
        self.caseID = caseID
        self.key = key
        self.name = name
        self.suite = suite
        self.status = status
        self.durationMs = durationMs
        self.attempts = attempts
        self.flaky = flaky
    }
}

/// A sharded run put together: each case once, as a single document would have reported it.
///
/// A case two shards reported is a retry of itself within the run (a re-run job, a test that belongs to two
/// partitions): the later shard's result is final, the attempts add up, and a pass after a failing attempt is
/// flaky in that run — what a runner's own retry would have reported.
public struct ShardAssembly: Sendable, Hashable {
    /// Each case once, at its final result, in ordinal order.
    public var results: [ShardedResult] = []
    /// Ordinals of results a later result of the same case replaced (to delete).
    public var superseded: [Int] = []
    /// Final results whose attempts or flakiness the earlier ones changed (to update).
    public var amended: [ShardedResult] = []
    public var totals = RunTotals()

    public init() {}

    /// `rows` in any order; arrival (then ordinal) decides which attempt came later.
    public static func assemble(_ rows: [ShardedResult]) -> ShardAssembly {
        var out = ShardAssembly()
        let ordered = rows.sorted { ($0.arrival, $0.ordinal) < ($1.arrival, $1.ordinal) }
        // Per case id, its results in ordinal order (most cases have one).
        var firstIndex: [String: Int] = [:]
        firstIndex.reserveCapacity(ordered.count)
        var repeats: [String: [ShardedResult]] = [:]
        for row in ordered {
            if firstIndex[row.caseID] == nil {
                firstIndex[row.caseID] = out.results.count
                out.results.append(row)
            } else {
                repeats[row.caseID, default: []].append(row)
            }
        }
        if !repeats.isEmpty {
            for (caseID, later) in repeats {
                guard let at = firstIndex[caseID] else { continue }
                let attempts = [out.results[at]] + later
                var final = attempts[attempts.count - 1]
                final.attempts = attempts.reduce(0) { $0 + max(1, $1.attempts) }
                let failedBefore = attempts.dropLast().contains { $0.status.isFailing || $0.flaky }
                final.flaky = final.status == .passed && (final.flaky || failedBefore)
                for earlier in attempts.dropLast() { out.superseded.append(earlier.ordinal) }
                out.amended.append(final)
                out.results[at] = final
            }
            // The final result keeps its own ordinal: put the results back in run order.
            out.results.sort { $0.ordinal < $1.ordinal }
            out.superseded.sort()
            out.amended.sort { $0.ordinal < $1.ordinal }
        }
        for result in out.results { out.totals.count(result.status, flaky: result.flaky) }
        return out
    }
}

extension RegressionSummary {
    /// Classifies final statuses (with their key digests, in order) against the baseline's.
    public static func compute<Statuses: Collection>(
        statuses: Statuses, digests: [CaseKeyDigest], baseline: [CaseKeyDigest: CaseStatus]
    ) -> (summary: RegressionSummary, buckets: [RegressionBucket?]) where Statuses.Element == CaseStatus {
        precondition(digests.count == statuses.count, "one digest per case")
        var summary = RegressionSummary()
        var buckets: [RegressionBucket?] = []
        buckets.reserveCapacity(statuses.count)
        for (index, status) in statuses.enumerated() {
            let bucket = RegressionBucket.classify(current: status, baseline: baseline[digests[index]])
            summary.count(bucket)
            buckets.append(bucket)
        }
        return (summary, buckets)
    }
}
