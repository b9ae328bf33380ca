import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One Server-Sent Event as a client sees it.
public struct ServerSentEvent: Sendable, Hashable {
    public let id: String?
    public let event: String
    public let data: String

    /// `data` as a JSON object.
    public var object: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:] }
}

/// A live `text/event-stream` over a real socket, parsed as EventSource does (id, event, data, comments).
/// Events collect as they arrive; tests wait for them with deadlines. `close()` drops the connection.
public final class EventStreamClient: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    let received = Mutex<[ServerSentEvent]>([])
    let comments = Mutex<[String]>([])
    let ended = Atomic<Bool>(false)
    let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(status: Int, headers: HTTPHeaders) {
        self.status = status
        self.headers = headers
    }

    /// Opens `path`. A non-200 answer is returned with `events` empty and `errorBody` set.
    public static func open(
        _ client: APIClient, _ path: String, lastEventID: String? = nil, cookie: String? = nil
    ) async throws -> (stream: EventStreamClient, errorBody: String?) {
        var request = HTTPClientRequest(url: client.baseURL + path)
        if let token = client.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        // Streams stay open: the deadline is far, the test closes the stream itself.
        let response = try await HTTPClient.shared.execute(request, deadline: .now() + .hours(1))
        let stream = EventStreamClient(status: Int(response.status.code), headers: response.headers)
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            stream.ended.store(true, ordering: .releasing)
            return (stream, String(buffer: body))
        }
        let reader = Task {
            var buffer = ""
            do {
                for try await chunk in response.body {
                    buffer += String(buffer: chunk)
                    while let range = buffer.range(of: "\n\n") {
                        let block = String(buffer[..<range.lowerBound])
                        buffer.removeSubrange(..<range.upperBound)
                        stream.parse(block)
                    }
                }
            } catch {}
            stream.ended.store(true, ordering: .releasing)
        }
        stream.task.withLock { $0 = reader }
        return (stream, nil)
    }

    func parse(_ block: String) {
        var id: String?
        var event = "message"
        var data: [String] = []
        var sawField = false
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") {
                comments.withLock { $0.append(String(line.dropFirst()).trimmingCharacters(in: .whitespaces)) }
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let field = String(parts[0])
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.hasPrefix(" ") { value.removeFirst() }
            switch field {
            case "id": id = value; sawField = true
            case "event": event = value; sawField = true
            case "data": data.append(value); sawField = true
            default: continue
            }
        }
        guard sawField, !data.isEmpty else { return }
        let item = ServerSentEvent(id: id, event: event, data: data.joined(separator: "\n"))
        received.withLock { $0.append(item) }
    }

    public var events: [ServerSentEvent] { received.withLock { $0 } }
    public var keepAlives: Int { comments.withLock { $0.filter { $0 == "keep-alive" }.count } }
    /// True once the server ended the stream (or the connection dropped).
    public var hasEnded: Bool { ended.load(ordering: .acquiring) }

    /// Waits until `condition` holds over the events so far (`testConditionTimeout` at most), and returns them.
    @discardableResult
    public func wait(
        _ what: String, seconds: Double = testConditionTimeout, until condition: @escaping ([ServerSentEvent]) -> Bool
    ) async throws -> [ServerSentEvent] {
        try await waitUntil(what, seconds: seconds) { condition(self.events) }
        return events
    }

    /// Drops the connection, as a client that goes away.
    public func close() {
        task.withLock { $0?.cancel() }
    }
}
