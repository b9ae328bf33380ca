import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

extension KaizenAPI {
    /// `GET /v1/events/stream`: the workspace's stored events after a position, then each as it commits, and the
    /// progress of pushes, as Server-Sent Events.
    func streamEvents(_ input: Operations.StreamEvents.Input) async throws -> Operations.StreamEvents.Output {
        let identity = try RequestIdentity.required()
        let grant: WorkspaceGrant
        if let slug = input.query.workspace {
            grant = try self.grant(identity, workspace: slug)
        } else if identity.grants.count == 1 {
            grant = identity.grants[0]
        } else {
            throw DomainError.invalidParameter("workspace", "is required: this credential can read \(identity.grants.count) workspaces")
        }
        let start = try StreamStart.parse(header: input.headers.lastEventID, query: input.query.after)
        // Named projects must exist and be readable (like every project route); the stream then keeps to them.
        var named: Set<String>?
        for slug in Set(input.query.project ?? []) {
            let (_, project) = try await resolveProject(identity, slug: slug, workspace: grant.workspaceSlug)
            named = (named ?? []).union([project.id])
        }
        let projectFilter = named
        let kinds = input.query.kind.map { Set($0.map(\.rawValue)) }
        let wantsProgress = kinds?.contains(IngestProgress.kind) ?? true
        let storedKinds = kinds.map { $0.subtracting([IngestProgress.kind]) }
        let registry = deps.registry
        let tokenClass = identity.tokenClass
        let position: Int64
        if let start { position = start } else { position = try await registry.withWorkspace(grant) { try await $0.latestEventPosition() } }
        let subscription = registry.live.subscribe(workspaceID: grant.workspaceID)

        let visible = VisibleProjects()
        let pump = StreamPump(
            signals: subscription.signals, position: position,
            read: { after in
                // Projects are read afresh (from the actor's cache) at each wake: one created or made private
                // since the stream opened is seen at once.
                let projects = try await registry.withWorkspace(grant) { try await $0.projects() }
                    .filter { $0.accessMode.visible(to: grant.role, tokenClass: tokenClass) }
                    .filter { projectFilter?.contains($0.id) ?? true }
                let slugs = Dictionary(uniqueKeysWithValues: projects.map { ($0.id, $0.slug) })
                await visible.set(slugs)
                if storedKinds?.isEmpty == true || slugs.isEmpty { return ([], after, false) }
                let events = try await registry.withWorkspace(grant) {
                    try await $0.streamEvents(
                        after: after, projectIDs: Array(slugs.keys), kinds: storedKinds.map(Array.init), limit: StreamPump.pageSize)
                }
                let chunks = events.map { ServerSentEvents.event(id: String($0.position), event: $0.kind, data: Self.streamJSON($0, project: slugs[$0.projectID])) }
                return (chunks, events.last?.position ?? after, events.count == StreamPump.pageSize)
            },
            progress: { progress in
                guard wantsProgress, await visible.slug(progress.projectID) != nil else { return nil }
                return ServerSentEvents.event(id: nil, event: IngestProgress.kind, data: Self.progressJSON(progress))
            },
            stillValid: stillValid(RequestIdentity.secret, grant: grant))
        return .ok(.init(headers: .init(cacheControl: "no-store"), body: .textEventStream(pump.body())))
    }

    /// `GET /v1/notifications/stream`: the caller's notifications after a seq, then each as it arrives.
    func streamNotifications(_ input: Operations.StreamNotifications.Input) async throws -> Operations.StreamNotifications.Output {
        let userID = try personalInbox()
        let inbox = try inboxService()
        let start = try StreamStart.parse(header: input.headers.lastEventID, query: input.query.after)
        let position: Int64
        if let start { position = start } else { position = try await inbox.latestSeq(userID: userID) }
        let subscription = inbox.live.subscribe(userID: userID)
        let pump = StreamPump(
            signals: subscription.signals, position: position,
            read: { after in
                let rows = try await inbox.notifications(userID: userID, after: after, limit: StreamPump.pageSize)
                let chunks = try rows.map { row in
                    let data = try JSONEncoder.stream.encode(Components.Schemas.Notification(row))
                    return ServerSentEvents.event(id: String(row.seq), event: "notification", data: String(decoding: data, as: UTF8.self))
                }
                return (chunks, rows.last?.seq ?? after, rows.count == StreamPump.pageSize)
            },
            progress: { _ in nil },
            stillValid: stillValid(RequestIdentity.secret))
        return .ok(.init(headers: .init(cacheControl: "no-store"), body: .textEventStream(pump.body())))
    }

    /// Whether the stream's credential still authenticates, and still grants what the stream was opened with
    /// (checked at each keep-alive: the stream of a revoked token, or of a member removed or demoted, ends there).
    func stillValid(_ secret: String?, grant: WorkspaceGrant? = nil) -> @Sendable () async -> Bool {
        let authenticator = deps.authenticator
        return {
            guard let secret, let identity = try? await authenticator.authenticate(secret: Substring(secret)) else { return false }
            guard let grant else { return true }
            return identity.grant(workspaceID: grant.workspaceID)?.role == grant.role
        }
    }

    static func streamJSON(_ event: StreamedEvent, project: String?) -> String {
        let payload = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) ?? [String: Any]()
        let object: [String: Any] = [
            "id": event.id, "kind": event.kind, "project": project ?? NSNull(), "subjectId": event.subjectID, "payload": payload,
            "createdAt": event.createdAt.formatted(.iso8601), "position": event.position,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func progressJSON(_ progress: IngestProgress) -> String {
        var object: [String: Any] = ["phase": progress.phase.rawValue, "project": progress.project, "at": progress.at.formatted(.iso8601)]
        if let v = progress.externalRunId { object["externalRunId"] = v }
        if let v = progress.uploadId { object["uploadId"] = v }
        if let v = progress.attachmentId { object["attachmentId"] = v }
        if let v = progress.runId { object["runId"] = v }
        if let v = progress.cases { object["cases"] = v }
        if let v = progress.total { object["total"] = v }
        if let v = progress.status { object["status"] = v }
        if let v = progress.message { object["message"] = v }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// Where a stream resumes: `Last-Event-ID` (what EventSource sends on reconnecting), else `?after=`.
enum StreamStart {
    static func parse(header: String?, query: String?) throws -> Int64? {
        if let header {
            let trimmed = header.trimmingCharacters(in: .whitespaces)
            // An empty header is EventSource's "no event yet".
            if trimmed.isEmpty { return query.flatMap(StreamPosition.parse) }
            guard let position = StreamPosition.parse(trimmed) else {
                throw DomainError.invalidParameter("Last-Event-ID", in: "header", "must be the id of an event this stream sent (digits)")
            }
            return position
        }
        guard let query else { return nil }
        guard let position = StreamPosition.parse(query) else {
            throw DomainError.invalidParameter("after", "must be the id of an event this stream sent (digits)")
        }
        return position
    }
}

/// The slugs of the projects a stream may show, as of its last read.
actor VisibleProjects {
    var slugs: [String: String] = [:]
    func set(_ slugs: [String: String]) { self.slugs = slugs }
    func slug(_ projectID: String) -> String? { slugs[projectID] }
}

/// Text of Server-Sent Events.
enum ServerSentEvents {
    static func event(id: String?, event: String, data: String) -> String {
        var out = ""
        if let id { out += "id: \(id)\n" }
        out += "event: \(event)\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { out += "data: \(line)\n" }
        return out + "\n"
    }
}

/// Produces one stream's body as the transport pulls it: it waits on the hub's signals and, when woken, reads
/// what follows its position (a page at a time). Pulled, so a slow client holds back its own reads and nobody
/// else's; it ends when the hub closes (shutdown), when the client leaves (the transport stops pulling, which
/// ends the subscription), or at a keep-alive once the credential is no longer valid.
actor StreamPump {
    static let pageSize = 200

    typealias Read = @Sendable (Int64) async throws -> (chunks: [String], last: Int64, more: Bool)
    var iterator: AsyncStream<LiveEventHub.Signal>.AsyncIterator
    var position: Int64
    var pending: [String] = []
    var started = false
    /// Woken, and not yet read up to the log's end.
    var behind = false
    let read: Read
    let progress: @Sendable (IngestProgress) async -> String?
    let stillValid: @Sendable () async -> Bool

    init(
        signals: AsyncStream<LiveEventHub.Signal>, position: Int64, read: @escaping Read,
        progress: @escaping @Sendable (IngestProgress) async -> String?, stillValid: @escaping @Sendable () async -> Bool
    ) {
        self.iterator = signals.makeAsyncIterator()
        self.position = position
        self.read = read
        self.progress = progress
        self.stillValid = stillValid
    }

    nonisolated func body() -> HTTPBody {
        let stream = AsyncThrowingStream<ArraySlice<UInt8>, any Error>(unfolding: { try await self.next() })
        return HTTPBody(stream, length: .unknown, iterationBehavior: .single)
    }

    func next() async throws -> ArraySlice<UInt8>? {
        if !started {
            started = true
            // Reconnect after 2 s; the comment gets the response's head through buffering proxies at once.
            return ArraySlice("retry: 2000\n: connected\n\n".utf8)
        }
        while pending.isEmpty {
            // Behind the log (a resume from long ago): one page at a time, as the client takes them, so a
            // backlog of any length costs one page of memory.
            if behind {
                let page = try await read(position)
                pending += page.chunks
                position = page.last
                behind = page.more
                continue
            }
            // A copy to call the mutating `next` on (it shares the stream's state), written back after.
            var signals = iterator
            let signal = await signals.next(isolation: self)
            iterator = signals
            guard let signal else { return nil }
            switch signal {
            case .wake:
                behind = true
            case .progress(let item):
                if let text = await progress(item) { pending.append(text) }
            case .heartbeat:
                guard await stillValid() else { return nil }
                pending.append(": keep-alive\n\n")
            }
        }
        return ArraySlice(pending.removeFirst().utf8)
    }
}

extension JSONEncoder {
    /// Compact, stable JSON for stream data lines.
    static var stream: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
