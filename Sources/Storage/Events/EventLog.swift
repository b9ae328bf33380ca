import Domains
import Foundation
import Logging
import PostgresNIO

/// The event log of one physical server, as live streams use it: numbering committed events, and the
/// notifications that wake the nodes.
///
/// Events are written without a position (by finalizes, roll-ups, defects … in their own transactions),
/// and without a NOTIFY (PostgreSQL serializes notifying commits: every finalize would wait for the others).
/// `hasUnnumbered()` is the sequencer's cheap poll; `number()` gives every committed event without a
/// position the next ones, one numbering at a time per server (an advisory lock), and announces the
/// workspaces it touched on `kaizen_events`. Positions therefore follow commit order: a stream that
/// read up to position p will never later find a row below p.
public struct EventLog: Sendable {
    public let server: PhysicalServer
    let logger: Logger

    public init(server: PhysicalServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    static let numberedChannel = "kaizen_events"
    static let progressChannel = "kaizen_progress"
    /// NOTIFY payloads must stay under 8,000 bytes; past this a wake-up names every workspace ("*").
    static let maxPayloadBytes = 7_000

    /// Whether some committed event waits for its position: one probe of a partial index (empty almost always).
    public func hasUnnumbered() async throws -> Bool {
        let logger = self.logger
        return try await server.run { connection in
            for try await _ in try await connection.query("SELECT 1 FROM events WHERE pos IS NULL LIMIT 1", logger: logger).decode(Int.self) {
                return true
            }
            return false
        }
    }

    /// Numbers up to `limit` committed events that have no position yet. Returns the workspaces whose logs
    /// grew, and whether more may be waiting.
    public func number(limit: Int = 10_000) async throws -> (workspaces: Set<String>, more: Bool) {
        let logger = self.logger
        return try await server.transaction { connection in
            // One numbering at a time per server, held to commit: a later numbering cannot commit first.
            try await connection.query("SELECT pg_advisory_xact_lock(8231, 1)", logger: logger)
            var workspaces: Set<String> = []
            var count = 0
            for try await ws in try await connection.query(
                """
                WITH todo AS (SELECT workspace_id, id FROM events WHERE pos IS NULL ORDER BY created_at, id LIMIT \(limit)),
                n AS (SELECT workspace_id, id, nextval('event_positions') AS pos FROM todo)
                UPDATE events e SET pos = n.pos FROM n WHERE e.workspace_id = n.workspace_id AND e.id = n.id
                RETURNING e.workspace_id
                """, logger: logger
            ).decode(String.self) {
                workspaces.insert(ws)
                count += 1
            }
            if !workspaces.isEmpty {
                let joined = workspaces.sorted().joined(separator: ",")
                let payload = joined.utf8.count > Self.maxPayloadBytes ? "*" : joined
                try await connection.query("SELECT pg_notify(\(Self.numberedChannel), \(payload))", logger: logger)
            }
            return (workspaces, count == limit)
        }
    }

    /// What the listener hears.
    public enum Notice: Sendable {
        /// These workspaces' logs grew (nil: any, the payload said "*").
        case numbered(Set<String>?)
        /// Ingest progress relayed by a node (a JSON array).
        case progress(String)
        /// The listener (re)connected: anything may have happened while it was away.
        case reconnected
    }

    /// LISTENs on both channels until cancelled (`.reconnected` whenever listening (re)starts).
    public func follow(_ handle: @escaping @Sendable (Notice) -> Void) async {
        await server.follow(channels: [Self.numberedChannel, Self.progressChannel], logger: logger, onListening: { handle(.reconnected) }) {
            channel, payload in
            if channel == Self.progressChannel {
                handle(.progress(payload))
            } else {
                handle(.numbered(payload == "*" ? nil : Set(payload.split(separator: ",").map(String.init))))
            }
        }
    }

    /// Sends relayed ingest progress (a JSON array) to every node listening on this server.
    public func relay(_ payload: String) async throws {
        let logger = self.logger
        try await server.run { connection in
            try await connection.query("SELECT pg_notify(\(Self.progressChannel), \(payload))", logger: logger)
        }
    }
}
