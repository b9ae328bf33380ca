import Domains
import Foundation
import OpenAPIRuntime
import Tenancy

/// Sign-in, sign-out, passwords, and the operators' list of accounts.
extension KaizenAPI {
    var secureCookies: Bool { deps.ingest.publicURL.isHTTPS }

    /// Refuses the attempt (429) when the account or the address has failed too often lately.
    func checkThrottle(account: String?) throws {
        if let wait = deps.signInThrottle.retryAfter(account: account, address: RequestOrigin.current?.clientAddress) {
            throw DomainError.rateLimited(
                "too many failed attempts for this account or from this address; retry in \(wait)s", retryAfter: wait)
        }
    }

    func sessionBody(account: Account, session: TokenInfo, secret: String) -> Components.Schemas.Session {
        .init(
            token: .init(id: session.id, secret: secret, expiresAt: session.expiresAt ?? Date()),
            user: .init(account.user), csrfToken: deps.sessions.csrfToken(sessionTokenID: session.id))
    }

    func login(_ input: Operations.Login.Input) async throws -> Operations.Login.Output {
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        try checkThrottle(account: body.email)
        let signedIn: (account: Account, session: TokenInfo, secret: String)
        do {
            signedIn = try await deps.accounts.signIn(email: body.email, password: body.password)
        } catch let error as DomainError where error.kind == .unauthorized {
            deps.signInThrottle.recordFailure(account: body.email, address: RequestOrigin.current?.clientAddress)
            throw error
        }
        return .ok(
            .init(
                headers: .init(
                    setCookie: SessionCookies.setCookie(
                        secret: signedIn.secret, maxAgeSeconds: deps.accounts.sessionSeconds, secure: secureCookies)),
                body: .json(sessionBody(account: signedIn.account, session: signedIn.session, secret: signedIn.secret))))
    }

    func logout(_ input: Operations.Logout.Input) async throws -> Operations.Logout.Output {
        let identity = try RequestIdentity.required()
        try await deps.accounts.signOut(identity)
        deps.authenticator.invalidate { $0.tokenID == identity.tokenID }
        return .noContent(.init(headers: .init(setCookie: SessionCookies.clearCookie(secure: secureCookies))))
    }

    func changePassword(_ input: Operations.ChangePassword.Input) async throws -> Operations.ChangePassword.Output {
        let identity = try RequestIdentity.required()
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        let key = identity.userID ?? identity.tokenID
        try checkThrottle(account: key)
        do {
            try await deps.accounts.changePassword(identity, current: body.currentPassword, new: body.newPassword)
        } catch let error as DomainError where error.pointers.contains("/currentPassword") {
            deps.signInThrottle.recordFailure(account: key, address: RequestOrigin.current?.clientAddress)
            throw error
        }
        if let userID = identity.userID { deps.authenticator.invalidate { $0.userID == userID } }
        return .noContent(.init(headers: .init(setCookie: SessionCookies.clearCookie(secure: secureCookies))))
    }

    func redeemPasswordLink(_ input: Operations.RedeemPasswordLink.Input) async throws -> Operations.RedeemPasswordLink.Output {
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        // Guessing links is throttled by address like guessing passwords.
        try checkThrottle(account: nil)
        let account: Account
        do {
            account = try await deps.accounts.redeemLink(body.link, password: body.password)
        } catch let error as DomainError where error.pointers.contains("/link") {
            deps.signInThrottle.recordFailure(account: nil, address: RequestOrigin.current?.clientAddress)
            throw error
        }
        deps.authenticator.invalidate { $0.userID == account.id }
        return .noContent(.init())
    }

    func acceptInvitation(_ input: Operations.AcceptInvitation.Input) async throws -> Operations.AcceptInvitation.Output {
        guard case .json(let body) = input.body else { throw DomainError.badRequest("expected application/json") }
        try checkThrottle(account: nil)
        let accepted: (account: Account, workspace: Workspace, session: TokenInfo, secret: String)
        do {
            accepted = try await deps.accounts.acceptInvitation(
                body.invitation, email: body.email, password: body.password, name: body.name,
                clientAddress: RequestOrigin.current?.clientAddress, requestID: RequestOrigin.current?.requestID)
        } catch let error as DomainError where error.pointers.contains("/invitation") || error.pointers.contains("/password") {
            deps.signInThrottle.recordFailure(account: nil, address: RequestOrigin.current?.clientAddress)
            throw error
        }
        deps.authenticator.invalidate { $0.userID == accepted.account.id }
        return .ok(
            .init(
                headers: .init(
                    setCookie: SessionCookies.setCookie(
                        secret: accepted.secret, maxAgeSeconds: deps.accounts.sessionSeconds, secure: secureCookies)),
                body: .json(sessionBody(account: accepted.account, session: accepted.session, secret: accepted.secret))))
    }

    func listAccounts(_ input: Operations.ListAccounts.Input) async throws -> Operations.ListAccounts.Output {
        let identity = try RequestIdentity.required()
        let size = try pageSize(input.query.limit, default: 100)
        let accounts = try await deps.accounts.accounts(of: identity, limit: size, offset: input.query.offset ?? 0)
        return .ok(.init(body: .json(accounts.map(Components.Schemas.Account.init))))
    }
}

extension Components.Schemas.Account {
    init(_ account: Account) {
        self.init(
            id: account.id, email: account.email, name: account.name.map { OpenAPIValueContainer(stringLiteral: $0) } ?? .null,
            hasPassword: account.hasPassword, _operator: account.isOperator, createdAt: account.createdAt,
            lastSignInAt: .timestamp(account.lastSignInAt))
    }
}
