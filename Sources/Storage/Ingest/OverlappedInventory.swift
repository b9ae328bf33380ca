import Domains
import Logging
import PostgresNIO
import Synchronization

/// Knobs of the finalize's writes. Task-local, so a test turns one for the server it starts.
public enum IngestTuning {
    /// How many new cases a run must bring for their inventory rows to go in beside its results
    /// (`OverlappedInventory`) rather than before them in the run's transaction.
    @TaskLocal public static var overlappedInventoryMinimum = 1_000
    /// Awaited by the beside insert once it holds its connection, before it claims the work: a test parks it
    /// there to make the run's own transaction do the insert.
    @TaskLocal public static var beforeInventoryClaim: (@Sendable () async -> Void)? = nil
}

/// A run's new inventory rows inserted on a second connection, in a transaction of their own, while the run's
/// transaction writes its results: a project's first push no longer pays for its inventory and its results one
/// after the other (10,000 new cases: 161 ms of inventory before 107 ms of results, `rollups` debug log).
///
/// Why a transaction of their own changes nothing anyone sees: the run's transaction waits for the inventory to
/// commit before it commits itself, and inventory rows that no stored result names are read by no one — every
/// listing joins the cases' stats, and their ids were never handed out. If the run's transaction fails after
/// them, they stay unseen, and the project's next push takes them (a unique violation, then the stored ids).
///
/// The run's transaction never waits for the second connection, so a full pool cannot deadlock: whichever side
/// claims the work first does it — the beside task once it holds a connection, or the run's transaction when
/// its results are written and the beside task still holds none (it then inserts the rows itself).
final class OverlappedInventory: Sendable {
    enum Claim { case open, beside, run }

    let inventory: InventoryColumns
    let projectID: String
    let workspaceID: String
    let logger: Logger
    private let claim: Mutex<Claim>
    /// The beside insert's ids; nil when the run's transaction took the work.
    private let beside: Mutex<Task<CaseIDMap?, any Error>?>

    private init(_ inventory: InventoryColumns, projectID: String, workspaceID: String, logger: Logger) {
        self.inventory = inventory
        self.projectID = projectID
        self.workspaceID = workspaceID
        self.logger = logger
        self.claim = Mutex(.open)
        self.beside = Mutex(nil)
    }

    /// Starts inserting `inventory` beside the caller's transaction.
    static func start(
        _ inventory: InventoryColumns, projectID: String, workspaceID: String, server: PhysicalServer, logger: Logger
    ) -> OverlappedInventory {
        let overlapped = OverlappedInventory(inventory, projectID: projectID, workspaceID: workspaceID, logger: logger)
        let task = Task { () -> CaseIDMap? in
            try await server.transaction { connection -> CaseIDMap? in
                if let hook = IngestTuning.beforeInventoryClaim { await hook() }
                guard overlapped.take(.beside) else { return nil }
                var ids = CaseIDMap()
                try await RunWriter.insertInventory(
                    inventory, projectID: projectID, workspaceID: workspaceID, into: &ids, on: connection, logger: logger)
                return ids
            }
        }
        overlapped.beside.withLock { $0 = task }
        return overlapped
    }

    /// Whether the beside task did the insert (for the debug log).
    var wasBeside: Bool { claim.withLock { $0 == .beside } }

    /// Claims the work for `side` if no one has.
    private func take(_ side: Claim) -> Bool {
        claim.withLock { state in
            guard state == .open else { return false }
            state = side
            return true
        }
    }

    /// The stored ids of the inventory's keys, once its rows are committed (beside) or written in the caller's
    /// transaction (when the beside task had no connection yet).
    func finish(on connection: PostgresConnection) async throws -> CaseIDMap {
        if take(.run) {
            var ids = CaseIDMap()
            try await RunWriter.insertInventory(
                inventory, projectID: projectID, workspaceID: workspaceID, into: &ids, on: connection, logger: logger)
            return ids
        }
        guard let task = beside.withLock({ $0 }), let ids = try await task.value else {
            throw StorageError.configuration("the inventory inserted beside a run did not say its ids")
        }
        return ids
    }

    /// The run's transaction failed: a beside task that has not begun leaves the rows alone.
    func abandon() {
        _ = take(.run)
    }
}
