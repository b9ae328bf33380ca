import Crypto
import Foundation

/// The events a webhook can subscribe to: every event Kaizen stores.
public enum WebhookEventKind: String, Sendable, CaseIterable, Codable {
    case runFinalized = "run.finalized"
    case runGateFailed = "run.gate_failed"
    case defectOpened = "defect.opened"
    case flakyDetected = "flaky.detected"
    case caseQuarantined = "case.quarantined"
    case caseReleased = "case.released"
}

/// How a delivery's body is shaped: Kaizen's own JSON, or a chat service's incoming-webhook message.
public enum WebhookFormat: String, Sendable, CaseIterable, Codable {
    case kaizen, slack, teams
}

/// A webhook as created or changed through the API, before validation.
public struct WebhookDraft: Sendable {
    public var url: String?
    public var events: [String]?
    public var format: String?
    public var description: String?
    public var active: Bool?

    public init(url: String? = nil, events: [String]? = nil, format: String? = nil, description: String? = nil, active: Bool? = nil) {
        self.url = url
        self.events = events
        self.format = format
        self.description = description
        self.active = active
    }
}

/// A webhook's settings once valid.
public struct WebhookSettings: Sendable, Hashable {
    public var url: String
    public var events: [WebhookEventKind]
    public var format: WebhookFormat
    public var description: String
    public var active: Bool

    public init(url: String, events: [WebhookEventKind], format: WebhookFormat, description: String, active: Bool) {
        self.url = url
        self.events = events
        self.format = format
        self.description = description
        self.active = active
    }
}

public enum WebhookRules {
    public static let maxURLLength = 2_048
    public static let maxDescriptionLength = 500
    /// Webhooks per project.
    public static let maxPerProject = 20

    /// Validates a draft over `current` (nil when creating: url and events are then required). Plain http is
    /// accepted only when the operator allows it. Every problem is reported with its pointer.
    public static func validate(_ draft: WebhookDraft, over current: WebhookSettings?, allowHTTP: Bool) -> Result<
        WebhookSettings, DomainError
    > {
        var problems: [FieldProblem] = []
        var url = current?.url ?? ""
        if let given = draft.url {
            if let problem = urlProblem(given, allowHTTP: allowHTTP) {
                problems.append(.init(pointer: "/url", message: problem))
            } else {
                url = given
            }
        } else if current == nil {
            problems.append(.init(pointer: "/url", message: "is required"))
        }
        var events = current?.events ?? []
        if let given = draft.events {
            var chosen: [WebhookEventKind] = []
            for (index, name) in given.enumerated() {
                if let kind = WebhookEventKind(rawValue: name) {
                    if !chosen.contains(kind) { chosen.append(kind) }
                } else {
                    problems.append(
                        .init(
                            pointer: "/events/\(index)",
                            message: "unknown event '\(name)'; one of \(WebhookEventKind.allCases.map(\.rawValue).joined(separator: ", "))"))
                }
            }
            if given.isEmpty { problems.append(.init(pointer: "/events", message: "must name at least one event")) }
            events = chosen
        } else if current == nil {
            problems.append(.init(pointer: "/events", message: "is required"))
        }
        var format = current?.format ?? .kaizen
        if let given = draft.format {
            if let parsed = WebhookFormat(rawValue: given) {
                format = parsed
            } else {
                problems.append(.init(pointer: "/format", message: "must be kaizen, slack or teams"))
            }
        }
        var description = current?.description ?? ""
        if let given = draft.description {
            if given.unicodeScalars.count > maxDescriptionLength {
                problems.append(.init(pointer: "/description", message: "must be at most \(maxDescriptionLength) characters"))
            } else if given.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) {
                problems.append(.init(pointer: "/description", message: "must not contain control characters"))
            } else {
                description = given
            }
        }
        if !problems.isEmpty { return .failure(.validation(problems)) }
        return .success(WebhookSettings(url: url, events: events, format: format, description: description, active: draft.active ?? current?.active ?? true))
    }

    static func urlProblem(_ text: String, allowHTTP: Bool) -> String? {
        guard text.utf8.count <= maxURLLength else { return "must be at most \(maxURLLength) bytes" }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { return "must be an absolute http(s) URL" }
        guard components.user == nil, components.password == nil else { return "must not carry credentials; use the signature" }
        switch scheme {
        case "https": return nil
        case "http": return allowHTTP ? nil : "must be https (the operator has not allowed plain http)"
        default: return "must be an https URL"
        }
    }
}

/// `Kaizen-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` — Stripe's scheme, which receivers
/// already know how to check. During a secret's rotation a delivery carries one `v1` per valid secret.
public enum WebhookSignature {
    public static func header(secrets: [String], timestamp: Int64, body: [UInt8]) -> String {
        var parts = ["t=\(timestamp)"]
        for secret in secrets { parts.append("v1=" + mac(secret: secret, timestamp: timestamp, body: body)) }
        return parts.joined(separator: ",")
    }

    public static func mac(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        var signed = Array("\(timestamp).".utf8)
        signed.append(contentsOf: body)
        let code = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Array(secret.utf8)))
        return Hex.string(code)
    }

    /// Whether `header` carries a valid signature of `body` under `secret`, made within `tolerance` of `now`.
    public static func verify(header: String, secret: String, body: [UInt8], now: Int64, tolerance: Int64 = 300) -> Bool {
        var timestamp: Int64?
        var candidates: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) } else if pair[0] == "v1" { candidates.append(pair[1]) }
        }
        guard let timestamp, abs(now - timestamp) <= tolerance else { return false }
        let expected = Array(mac(secret: secret, timestamp: timestamp, body: body).utf8)
        // Compared in constant time for a given length.
        return candidates.contains { candidate in
            let given = Array(candidate.utf8)
            guard given.count == expected.count else { return false }
            return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }

    /// A new signing secret: `whsec_` and 32 random bytes in hex.
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_" + Hex.string((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// Which addresses a webhook may be sent to. Loopback, link-local (cloud metadata included), private,
/// shared, multicast and unspecified addresses are internal: refused unless an operator's CIDR allows them.
public struct NetworkPolicy: Sendable, Hashable {
    public struct CIDR: Sendable, Hashable {
        public let bytes: [UInt8]
        public let prefix: Int

        public func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for (a, b) in zip(address, bytes) {
                if remaining <= 0 { return true }
                let bits = min(8, remaining)
                let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    public let allowed: [CIDR]

    public init(allowed: [CIDR] = []) { self.allowed = allowed }

    /// `127.0.0.0/8, ::1/128`; throws a message naming the entry it cannot read.
    public static func parse(_ list: String) throws -> NetworkPolicy {
        var out: [CIDR] = []
        for entry in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = IPAddress.parse(parts[0]) else { throw DomainError.badRequest("'\(entry)' is not a CIDR") }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, prefix >= 0, prefix <= bytes.count * 8 else { throw DomainError.badRequest("'\(entry)' has a bad prefix length") }
            out.append(CIDR(bytes: bytes, prefix: prefix))
        }
        return NetworkPolicy(allowed: out)
    }

    /// Nil when `address` (4 or 16 bytes) may be sent to, else why not.
    public func refusal(_ address: [UInt8]) -> String? {
        if allowed.contains(where: { $0.contains(address) }) { return nil }
        guard let kind = IPAddress.internalKind(address) else { return nil }
        return "\(IPAddress.text(address)) is a \(kind) address (allow it with KAIZEN_WEBHOOK_ALLOWED_NETWORKS)"
    }
}

public enum IPAddress {
    /// 4 bytes for dotted IPv4, 16 for IPv6 (with `::` and an embedded IPv4 tail); nil otherwise.
    public static func parse(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var out: [UInt8] = []
            for part in parts {
                guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
                out.append(value)
            }
            return out
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parse(String(piece)) else { return nil }
                    out += v4
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 16 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// Why an address is not on the public internet, or nil when it is.
    public static func internalKind(_ a: [UInt8]) -> String? {
        if a.count == 4 {
            switch (a[0], a[1]) {
            case (127, _): return "loopback"
            case (10, _), (172, 16...31), (192, 168): return "private"
            case (169, 254): return "link-local"
            case (100, 64...127): return "shared (carrier-grade NAT)"
            case (0, _): return "unspecified"
            case (224...255, _): return "multicast or reserved"
            default: return nil
            }
        }
        guard a.count == 16 else { return "malformed" }
        if a.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return "loopback" }
        // IPv4-mapped (::ffff:a.b.c.d) and NAT64 well-known (64:ff9b::/96) addresses carry an IPv4 one.
        if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF { return internalKind(Array(a[12..<16])) }
        if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xFF && a[3] == 0x9B && a[4..<12].allSatisfy({ $0 == 0 }) {
            return internalKind(Array(a[12..<16]))
        }
        if a[0] & 0xFE == 0xFC { return "private (unique local)" }
        if a[0] == 0xFE && a[1] & 0xC0 == 0x80 { return "link-local" }
        if a[0] == 0xFF { return "multicast" }
        return nil
    }

    public static func text(_ a: [UInt8]) -> String {
        if a.count == 4 { return a.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: a.count, by: 2).map { String(UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}

/// A project's webhook as stored (its secret is never part of it: shown once, at creation or rotation).
public struct WebhookRecord: Sendable, Hashable {
    public let id: String
    public let projectID: String
    public let settings: WebhookSettings
    /// While a rotation's grace period runs, the previous secret still signs deliveries until then.
    public let previousSecretValidUntil: Date?
    /// Why the hook was disabled by Kaizen (a 410, failures for a day); nil when enabled or disabled by a person.
    public let disabledReason: String?
    public let createdBy: String
    public let createdAt: Date
    public let updatedAt: Date

    public init(
        id: String, projectID: String, settings: WebhookSettings, previousSecretValidUntil: Date?, disabledReason: String?,
        createdBy: String, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.projectID = projectID
        self.settings = settings
        self.previousSecretValidUntil = previousSecretValidUntil
        self.disabledReason = disabledReason
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One event's delivery to one webhook.
public struct WebhookDeliveryRecord: Sendable, Hashable {
    public enum State: String, Sendable, Codable {
        case pending, delivered, failed
    }

    public let id: String
    public let webhookID: String
    public let eventID: String
    public let eventKind: String
    public let state: State
    public let attempts: Int
    public let lastStatus: Int?
    public let lastLatencyMs: Int?
    /// The first bytes of the receiver's last answer.
    public let lastResponse: String?
    public let lastError: String?
    public let nextAttemptAt: Date?
    public let deliveredAt: Date?
    public let createdAt: Date

    public init(
        id: String, webhookID: String, eventID: String, eventKind: String, state: State, attempts: Int, lastStatus: Int?,
        lastLatencyMs: Int?, lastResponse: String?, lastError: String?, nextAttemptAt: Date?, deliveredAt: Date?, createdAt: Date
    ) {
        self.id = id
        self.webhookID = webhookID
        self.eventID = eventID
        self.eventKind = eventKind
        self.state = state
        self.attempts = attempts
        self.lastStatus = lastStatus
        self.lastLatencyMs = lastLatencyMs
        self.lastResponse = lastResponse
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.deliveredAt = deliveredAt
        self.createdAt = createdAt
    }
}

/// When a failed delivery is tried again: exponential from 10 s, capped at an hour, with ±20 % jitter so
/// receivers coming back are not hit by every sender at once; after a day it is given up.
public enum WebhookRetry {
    public static let giveUpAfterSeconds: Double = 24 * 3600

    public static func delaySeconds(afterAttempt attempt: Int, jitter: Double, first: Double = 10) -> Double {
        let base = min(3600, first * pow(2, Double(min(max(0, attempt - 1), 30))))
        return base * (0.8 + 0.4 * min(max(jitter, 0), 1))
    }

    /// Statuses worth trying again: server errors, 408 and 429. Any other 4xx is the receiver's final word.
    public static func retryable(status: Int) -> Bool { status >= 500 || status == 408 || status == 429 }
}

/// A delivery's body in the webhook's format.
public enum WebhookBody {
    /// Kaizen's own: `{id, type, createdAt, workspaceId, project: {id, slug}, data, links}`.
    public static func render(
        format: WebhookFormat, eventID: String, kind: String, createdAt: Date, workspaceID: String, projectID: String,
        projectSlug: String, payload: [String: Any], publicURL: String
    ) -> [UInt8] {
        let iso = ISO8601DateFormatter().string(from: createdAt)
        let link = link(kind: kind, payload: payload, projectSlug: projectSlug, publicURL: publicURL)
        let object: [String: Any]
        switch format {
        case .kaizen:
            object = [
                "id": eventID, "type": kind, "createdAt": iso, "workspaceId": workspaceID,
                "project": ["id": projectID, "slug": projectSlug], "data": payload, "links": ["html": link],
            ]
        case .slack:
            let text = headline(kind: kind, payload: payload, projectSlug: projectSlug)
            var blocks: [[String: Any]] = [["type": "section", "text": ["type": "mrkdwn", "text": slackEscape(text)]]]
            if let names = payload["newFailureNames"] as? [String], !names.isEmpty {
                blocks.append([
                    "type": "section",
                    "text": ["type": "mrkdwn", "text": "*New failures*\n" + names.prefix(10).map { "• " + slackEscape($0) }.joined(separator: "\n")],
                ])
            }
            blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": "<\(link)|Open in Kaizen>"]]])
            object = ["text": text, "blocks": blocks]
        case .teams:
            let text = headline(kind: kind, payload: payload, projectSlug: projectSlug)
            object = [
                "@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": text, "text": text,
                "potentialAction": [["@type": "OpenUri", "name": "Open in Kaizen", "targets": [["os": "default", "uri": link]]]],
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }

    static func link(kind: String, payload: [String: Any], projectSlug: String, publicURL: String) -> String {
        if let run = payload["runId"] as? String { return "\(publicURL)/runs/\(run)" }
        if let defect = payload["defectId"] as? String { return "\(publicURL)/defects/\(defect)" }
        if let testCase = payload["caseId"] as? String { return "\(publicURL)/cases/\(testCase)" }
        return "\(publicURL)/projects/\(projectSlug)"
    }

    /// One line a person reads in a chat.
    public static func headline(kind: String, payload: [String: Any], projectSlug: String) -> String {
        let run = payload["externalRunId"] as? String ?? payload["runId"] as? String ?? "a run"
        switch kind {
        case "run.finalized":
            let regression = payload["regression"] as? [String: Any] ?? [:]
            let new = regression["newFailures"] as? Int ?? 0
            let gate = payload["gate"] as? String ?? "none"
            let verdict = gate == "failed" ? "quality gate failed" : (new > 0 ? "\(new) new failure\(new == 1 ? "" : "s")" : "no new failures")
            return "\(projectSlug) · \(run) on \(payload["branch"] as? String ?? "?"): \(verdict)"
        case "run.gate_failed": return "\(projectSlug) · \(run): quality gate failed"
        case "defect.opened": return "\(projectSlug): defect opened — \(payload["title"] as? String ?? "")"
        case "flaky.detected": return "\(projectSlug): a test became flaky — \(payload["name"] as? String ?? payload["caseId"] as? String ?? "")"
        case "case.quarantined": return "\(projectSlug): a test was quarantined — \(payload["reason"] as? String ?? "")"
        case "case.released": return "\(projectSlug): a test was released from quarantine"
        case "webhook.ping": return "\(projectSlug): Kaizen webhook ping"
        default: return "\(projectSlug): \(kind)"
        }
    }

    /// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
    static func slackEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
