import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

/// Members, invitations and the audit log of a workspace.
extension KaizenAPI {
    func listMembers(_ input: Operations.ListMembers.Input) async throws -> Operations.ListMembers.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        let members = try await deps.accounts.members(in: grant)
        return .ok(.init(body: .json(members.map(Components.Schemas.Member.init))))
    }

    func updateMember(_ input: Operations.UpdateMember.Input) async throws -> Operations.UpdateMember.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let member = try await deps.accounts.setRole(
            body.role.domain, of: input.path.userId, in: grant, by: RequestOrigin.actor(identity))
        deps.authenticator.invalidate { $0.userID == member.user.id }
        return .ok(.init(body: .json(.init(member))))
    }

    func removeMember(_ input: Operations.RemoveMember.Input) async throws -> Operations.RemoveMember.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        let userID = input.path.userId
        try await deps.accounts.removeMember(userID, in: grant, by: RequestOrigin.actor(identity))
        deps.authenticator.invalidate { $0.userID == userID }
        return .noContent(.init())
    }

    func listInvitations(_ input: Operations.ListInvitations.Input) async throws -> Operations.ListInvitations.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        let now = Date()
        return .ok(.init(body: .json(try await deps.accounts.invitations(in: grant).map { .init($0, now: now) })))
    }

    func createInvitation(_ input: Operations.CreateInvitation.Input) async throws -> Operations.CreateInvitation.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let (invitation, secret) = try await deps.accounts.invite(
            email: body.email, role: body.role.domain, expiresInSeconds: body.expiresInSeconds, in: grant,
            by: RequestOrigin.actor(identity))
        // The secret rides in the fragment, which browsers never send to a server or write to its logs.
        let link = deps.ingest.publicURL.value + "/invitations/accept#" + secret
        return .created(
            .init(
                body: .json(
                    .init(value1: .init(invitation, now: Date()), value2: .init(secret: secret, link: link)))))
    }

    func revokeInvitation(_ input: Operations.RevokeInvitation.Input) async throws -> Operations.RevokeInvitation.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        let invitation = try await deps.accounts.revokeInvitation(
            input.path.invitationId, in: grant, by: RequestOrigin.actor(identity))
        return .ok(.init(body: .json(.init(invitation, now: Date()))))
    }

    func listAuditEvents(_ input: Operations.ListAuditEvents.Input) async throws -> Operations.ListAuditEvents.Output {
        let identity = try RequestIdentity.required()
        let grant = try grant(identity, workspace: input.path.workspace)
        let size = try pageSize(input.query.limit, default: 50)
        var filter = AuditFilter()
        filter.actorID = input.query.actor
        filter.action = input.query.action
        filter.targetType = input.query.targetType
        filter.targetID = input.query.targetId
        filter.since = try input.query.since.map { try Self.timestamp($0, parameter: "since") }
        filter.until = try input.query.until.map { try Self.timestamp($0, parameter: "until") }
        filter.beforeID = try input.query.cursor.flatMap { try Cursor.decodeID($0) }
        let accounts = deps.accounts
        let rows = try await deps.registry.withWorkspace(grant) {
            try await $0.auditLog(filter: filter, limit: size + 1, catalog: accounts, grant: grant)
        }
        let (page, next) = Cursor.page(rows, size: size) { Cursor.encode(id: $0.id) }
        let items = try page.map { event -> Components.Schemas.AuditEvent in
            let details = try JSONDecoder().decode(OpenAPIObjectContainer.self, from: JSONEncoder().encode(event.details))
            return .init(
                id: event.id, at: event.at, actor: .init(_type: event.actorType, id: event.actorID), action: event.action,
                target: .init(_type: event.targetType, id: event.targetID),
                clientAddress: event.clientAddress.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null,
                requestId: event.requestID.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null,
                details: .init(additionalProperties: details))
        }
        return .ok(.init(body: .json(.init(items: items, nextCursor: next))))
    }
}

extension KaizenAPI {
    /// An RFC 3339 date-time of a query parameter, with or without fractional seconds; 400 naming it otherwise.
    static func timestamp(_ text: String, parameter: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        guard let date = formatter.date(from: text) else {
            throw DomainError.invalidParameter(parameter, "is not an RFC 3339 date-time such as 2026-12-01T09:30:00Z")
        }
        return date
    }
}

extension Components.Schemas.Member {
    init(_ member: Member) {
        self.init(user: .init(member.user), role: .init(member.role), since: member.since)
    }
}

extension Components.Schemas.Invitation {
    init(_ invitation: Invitation, now: Date) {
        self.init(
            id: invitation.id, email: invitation.email, role: .init(invitation.role),
            state: .init(rawValue: invitation.state(at: now).rawValue) ?? .pending,
            createdBy: invitation.createdBy.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null,
            createdAt: invitation.createdAt, expiresAt: invitation.expiresAt,
            acceptedAt: .timestamp(invitation.acceptedAt), revokedAt: .timestamp(invitation.revokedAt))
    }
}
