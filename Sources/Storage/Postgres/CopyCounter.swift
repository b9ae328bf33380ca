import Logging
import PostgresNIO
import Synchronization

/// Counts the COPYs running on one server's connections, so that shutdown never closes a pool under one:
/// PostgresNIO traps (a precondition in its connection state machine) when a connection is force-closed while
/// it is copying. `PhysicalServer.run`/`transaction` make their server's counter current for the work they run.
final class CopyCounter: Sendable {
    let running = Atomic<Int>(0)

    /// The counter of the server whose connection the current task works on.
    @TaskLocal static var current: CopyCounter?
}

extension PostgresConnection {
    /// `copyFrom`, counted on the current server while it runs. Every COPY of Kaizen goes through here.
    func countedCopyFrom(
        table: String, columns: [String], logger: Logger, writeData: (PostgresCopyFromWriter) async throws -> Void
    ) async throws {
        let counter = CopyCounter.current
        counter?.running.add(1, ordering: .relaxed)
        defer { counter?.running.subtract(1, ordering: .releasing) }
        try await copyFrom(table: table, columns: columns, logger: logger, writeData: writeData)
    }
}
