import Domains
import Foundation

/// What a roll-up needs of a run's results (case, status, retried, duration, in ordinal order), as its finalize
/// on this node wrote them: the roll-up then need not read them back. A hint, like every cache of Kaizen's —
/// a roll-up that finds nothing here (another node finalized, a restart, a retry) reads the stored rows.
struct FreshRunResults: Sendable {
    let caseIDs: [CaseIDMap.ID]
    let statuses: [CaseStatus]
    let retried: [Bool]
    let durations: [Int64]

    var count: Int { caseIDs.count }

    init(_ cases: [ValidatedCase], caseIDs map: CaseIDMap, digests: [CaseKeyDigest]) {
        caseIDs = digests.map { map[$0] ?? .text("") }
        statuses = cases.map(\.status)
        retried = cases.map(\.flaky)
        durations = cases.map(\.durationMs)
    }

    /// The results as the roll-up folds them; their failing ordinals added to `failing`.
    func rolled(runID: String, failing: inout RollUp.FailingRows) -> [RolledResult] {
        var out: [RolledResult] = []
        out.reserveCapacity(count)
        for index in caseIDs.indices {
            out.append(RolledResult(caseID: caseIDs[index].string, status: statuses[index], retried: retried[index], durationMS: durations[index]))
            if statuses[index].isFailing { failing.append(runID, Int32(index)) }
        }
        return out
    }
}

/// Runs' fresh results by run id, from their finalize to their roll-up, bounded by the results held (about 40
/// bytes each): the oldest go first, and a run bigger than the bound is not kept.
actor FreshResults {
    private let capacity: Int
    private var entries: [String: FreshRunResults] = [:]
    private var order: [String] = []
    private var held = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    func put(runID: String, _ results: FreshRunResults) {
        guard results.count <= capacity, results.count > 0 else { return }
        while held + results.count > capacity, !order.isEmpty {
            let oldest = order.removeFirst()
            held -= entries.removeValue(forKey: oldest)?.count ?? 0
        }
        entries[runID] = results
        order.append(runID)
        held += results.count
    }

    /// The run's results, once: a roll-up takes them.
    func take(runID: String) -> FreshRunResults? {
        guard let results = entries.removeValue(forKey: runID) else { return nil }
        order.removeAll { $0 == runID }
        held -= results.count
        return results
    }
}
