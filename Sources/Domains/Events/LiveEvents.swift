import Foundation

/// An event of a workspace's log as a live stream sends it: with its position, which is what a client
/// hands back (`Last-Event-ID`) to resume.
public struct StreamedEvent: Sendable, Hashable {
    /// Per database server, in commit order; what `Last-Event-ID` carries.
    public let position: Int64
    public let id: String
    public let kind: String
    public let projectID: String
    public let subjectID: String
    /// The event's JSON object, as stored.
    public let payload: String
    public let createdAt: Date

    public init(position: Int64, id: String, kind: String, projectID: String, subjectID: String, payload: String, createdAt: Date) {
        self.position = position
        self.id = id
        self.kind = kind
        self.projectID = projectID
        self.subjectID = subjectID
        self.payload = payload
        self.createdAt = createdAt
    }
}

/// The stream positions a client may send back.
public enum StreamPosition {
    /// A position is a non-negative decimal integer; anything else (signs, spaces, 19+ digits) is refused
    /// rather than guessed at, so a client cannot resume from the wrong place silently.
    public static func parse(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }
}

/// A moment of a push in progress, for whoever watches a live stream (seed 004's "uploading → … →
/// done / failed"). Transient: sent to the streams open at that moment, never stored — what a push
/// came to is in the log (`run.finalized`, `run.rolled_up`).
public struct IngestProgress: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Codable, CaseIterable {
        /// An upload session was opened (`init`): `total` attachments declared.
        case initialized
        /// One attachment's bytes arrived (`attachmentId`, of `total` declared).
        case uploaded
        /// The finalize's document is being checked: `cases` in it.
        case validating
        /// Valid; the run is being compared with its baseline and written.
        case storing
        /// Stored: `runId`, `status` (`passed`/`failed`, `open` for a shard still waiting for others).
        case finalized
        /// The push was refused: `message` says why (as the response did).
        case failed
    }

    public let workspaceID: String
    public let projectID: String
    public let project: String
    public let phase: Phase
    public var externalRunId: String?
    public var uploadId: String?
    public var attachmentId: String?
    public var runId: String?
    public var cases: Int?
    public var received: Int?
    public var total: Int?
    public var status: String?
    public var message: String?
    public let at: Date

    public init(workspaceID: String, projectID: String, project: String, phase: Phase, at: Date = Date()) {
        self.workspaceID = workspaceID
        self.projectID = projectID
        self.project = project
        self.phase = phase
        self.at = at
    }

    /// The kind a stream filter names it by.
    public static let kind = "ingest.progress"
}
