import ArgumentParser
import Domains
import Foundation
import KaizenServer
import Logging
import Storage
import Tenancy

@main
struct KaizenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kaizen",
        abstract: "Kaizen, the self-hostable test-results server.",
        version: KaizenVersion.current,
        subcommands: [Serve.self, WorkspaceCommand.self, TokenCommand.self, UserCommand.self, Migrate.self],
        defaultSubcommand: Serve.self)
}

func makeLogger(_ config: KaizenConfiguration) -> Logger {
    var logger = Logger(label: "kaizen")
    logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
    return logger
}

/// Runs an operator subcommand against the configured storage, then closes it.
func withStorage<T: Sendable>(_ body: (StorageCluster) async throws -> T) async throws -> T {
    let config = try KaizenConfiguration.fromEnvironment()
    var logger = makeLogger(config)
    logger.logLevel = .warning  // keep operator output clean
    let storage = try await StorageHandle.open(config, logger: logger)
    do {
        let result = try await body(storage.cluster)
        await storage.close()
        return result
    } catch {
        await storage.close()
        throw error
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the server (embedded PostgreSQL under KAIZEN_DATA_DIR unless KAIZEN_DATABASE_URLS is set).")

    func run() async throws {
        let config = try KaizenConfiguration.fromEnvironment()
        let logger = makeLogger(config)
        try await KaizenServerRunner.run(config: config, logger: logger) { ready in
            var lines = ["Kaizen \(KaizenVersion.current) listening on http://\(ready.host):\(ready.port) (HTTP/1.1 and HTTP/2)"]
            if let tls = ready.tlsPort { lines.append("TLS (HTTP/2 and HTTP/1.1 via ALPN) on https://\(ready.host):\(tls)") }
            lines.append(
                "Database: \(config.databaseURLs == nil ? "embedded PostgreSQL in \(config.embeddedPostgresDirectory)" : "\(ready.cluster.servers.count) server(s)"), \(ready.cluster.shardMap.shardCount) logical shards")
            if let first = ready.firstRun, first.createdNow {
                lines.append("First start: created workspace 'default'; its admin token is in \(first.tokenPath)")
                if let link = first.ownerLinkPath { lines.append("Set up the owner account with the link in \(link)") }
            } else if let first = ready.firstRun {
                lines.append("Admin token from the first start: \(first.tokenPath)")
            }
            // Unbuffered, so a supervisor or a pipe sees the banner at once.
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations to the catalog and every shard server, then exit.")

    func run() async throws {
        let servers = try await withStorage { $0.servers.count }
        print("migrations are up to date on \(servers) server(s)")
    }
}

struct WorkspaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace", abstract: "Manage workspaces.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a workspace.")
        @Option(help: "URL slug: a-z, 0-9 and '-'.") var slug: String
        @Option(help: "Display name (default: the slug).") var name: String?

        func run() async throws {
            if let problem = Slug.problem(slug) { throw ValidationError("--slug \(problem)") }
            let workspace = try await withStorage { cluster in
                do {
                    return try await cluster.catalog.createWorkspace(slug: slug, name: name ?? slug)
                } catch let error as DomainError where error.isUniqueViolation {
                    throw ValidationError("a workspace with slug '\(slug)' already exists")
                }
            }
            print("created workspace \(workspace.slug) (\(workspace.id)) on logical shard \(workspace.shardID)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workspaces and their shard placement.")

        func run() async throws {
            let rows = try await withStorage { cluster in
                try await cluster.catalog.allWorkspaces().map {
                    "\($0.slug)\t\($0.id)\tshard \($0.shardID)\tserver \(cluster.shardMap.serverIndex(forShard: $0.shardID) ?? -1)"
                }
            }
            print(rows.joined(separator: "\n"))
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Mint, list, revoke and delete tokens.",
        subcommands: [Create.self, List.self, Revoke.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint a token and print its secret (shown once).",
            discussion: """
                Workspace tokens are bound to --workspace with --role and live until revoked, or expire after --ttl \
                (at most 2 years). User tokens belong to --user (an email; the user is created if new and becomes a \
                member of --workspace with --role) and expire after --ttl (default 12h, at most 30d).
                """)
        @Option(help: "Workspace slug.") var workspace: String
        @Option(name: .customLong("class"), help: "workspace or user.") var tokenClass: String = "workspace"
        @Option(help: "admin, member or viewer.") var role: String = "member"
        @Option(help: "A name to tell the token apart.") var name: String?
        @Option(help: "User tokens: the user's email.") var user: String?
        @Option(help: "Lifetime such as 90m, 12h, 7d: user tokens default 12h, at most 30d; workspace tokens at most 730d.")
        var ttl: String?

        func run() async throws {
            guard let tokenClass = TokenClass(rawValue: tokenClass) else {
                throw ValidationError("--class must be workspace or user")
            }
            guard let role = Role(rawValue: role) else { throw ValidationError("--role must be admin, member or viewer") }
            var ttlSeconds: Int?
            if let ttl {
                let most = tokenClass == .user ? TokenRules.maxUserTTLSeconds : TokenRules.maxWorkspaceTTLSeconds
                guard let seconds = parseDuration(ttl), seconds >= 60, seconds <= most else {
                    throw ValidationError(
                        "--ttl must be a duration between 1m and \(most / 86_400)d for \(tokenClass.rawValue) tokens, such as 90m, 12h or 7d")
                }
                ttlSeconds = seconds
            }
            if tokenClass == .user {
                guard let user, TokenRules.validateEmail(user, pointer: "") == nil else {
                    throw ValidationError("user tokens need --user with an email address")
                }
            } else if user != nil {
                throw ValidationError("--user is only for --class user")
            }
            let (info, secret) = try await withStorage { cluster in
                guard let ws = try await cluster.catalog.workspace(slug: workspace) else {
                    throw ValidationError("no workspace '\(workspace)'")
                }
                switch tokenClass {
                case .workspace:
                    return try await cluster.catalog.createToken(
                        .init(
                            name: name ?? "\(role.rawValue) token", tokenClass: .workspace, workspaceID: ws.id, role: role,
                            userID: nil, createdBy: "kaizen-cli",
                            expiresAt: ttlSeconds.map { Date().addingTimeInterval(TimeInterval($0)) }))
                case .user:
                    let account = try await cluster.catalog.upsertUser(email: (user ?? "").lowercased(), name: nil)
                    try await cluster.catalog.setMembership(workspaceID: ws.id, userID: account.id, role: role)
                    let seconds = ttlSeconds ?? TokenRules.defaultUserTTLSeconds
                    return try await cluster.catalog.createToken(
                        .init(
                            name: name ?? "user token", tokenClass: .user, workspaceID: ws.id, role: role, userID: account.id,
                            createdBy: "kaizen-cli", expiresAt: Date().addingTimeInterval(TimeInterval(seconds))))
                }
            }
            FileHandle.standardError.write(
                Data("created \(info.tokenClass.rawValue) token \(info.id)\(info.expiresAt.map { ", expires \($0)" } ?? "")\n".utf8))
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a workspace's tokens (never their secrets).")
        @Option(help: "Workspace slug.") var workspace: String

        func run() async throws {
            let rows = try await withStorage { cluster in
                guard let ws = try await cluster.catalog.workspace(slug: workspace) else {
                    throw ValidationError("no workspace '\(workspace)'")
                }
                return try await cluster.catalog.tokens(workspaceID: ws.id).map { token in
                    let state = token.revokedAt != nil ? "revoked" : token.expiresAt.map { $0 <= Date() } == true ? "expired" : "active"
                    let used = token.lastUsedAt.map { "used \($0.ISO8601Format())" } ?? "never used"
                    return "\(token.id)\t\(token.tokenClass.rawValue)\t\(token.role?.rawValue ?? "-")\t\(token.user?.email ?? "-")\t\(token.hint)…\t\(state)\t\(used)\t\(token.name)"
                }
            }
            print(rows.joined(separator: "\n"))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @Option(help: "Workspace slug.") var workspace: String
        @Argument(help: "Token id (tok_…).") var id: String

        func run() async throws {
            try await withStorage { cluster in
                guard let ws = try await cluster.catalog.workspace(slug: workspace),
                    try await cluster.catalog.revokeToken(id: id, workspaceID: ws.id, by: .operatorCommand("kaizen token revoke")) != nil
                else {
                    throw ValidationError("no token \(id) in workspace '\(workspace)'")
                }
            }
            print("revoked \(id)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a token for good (revoke keeps it listed as revoked; delete removes it).")
        @Option(help: "Workspace slug.") var workspace: String
        @Argument(help: "Token id (tok_…).") var id: String

        func run() async throws {
            try await withStorage { cluster in
                guard let ws = try await cluster.catalog.workspace(slug: workspace),
                    try await cluster.catalog.deleteToken(id: id, workspaceID: ws.id, by: .operatorCommand("kaizen token delete"))
                else {
                    throw ValidationError("no token \(id) in workspace '\(workspace)'")
                }
            }
            print("deleted \(id)")
        }
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage accounts (people who sign in).",
        subcommands: [Create.self, ResetPassword.self, List.self])

    /// Where people open links: the configured public URL, or the local listener.
    static func base(_ config: KaizenConfiguration) -> String {
        config.publicURL ?? "http://\(config.host):\(config.port)"
    }

    static func accounts(_ cluster: StorageCluster) -> AccountService {
        // Operator commands never hash a password; the cost is irrelevant here.
        AccountService(repository: cluster.catalog, passwords: BcryptPasswordHasher(cost: 12))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account and print its one-time set-password link (valid 7 days).")
        @Option(help: "Email address (unique, case-insensitive).") var email: String
        @Option(help: "Display name.") var name: String?
        @Flag(help: "May list every account (GET /v1/admin/users).") var `operator` = false
        @Option(help: "Also make the person a member of this workspace (slug).") var workspace: String?
        @Option(help: "The role in --workspace: owner, admin, member or viewer.") var role: String = "member"

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role must be owner, admin, member or viewer") }
            let config = try KaizenConfiguration.fromEnvironment()
            let (account, secret) = try await withStorage { cluster in
                let created = try await UserCommand.accounts(cluster).createAccount(email: email, name: name, isOperator: `operator`)
                if let workspace {
                    guard let ws = try await cluster.catalog.workspace(slug: workspace) else {
                        throw ValidationError("no workspace '\(workspace)'")
                    }
                    try await cluster.catalog.addMember(
                        workspaceID: ws.id, userID: created.account.id, role: role, by: .operatorCommand("kaizen user create"))
                }
                return created
            }
            FileHandle.standardError.write(Data("account \(account.id) (\(account.email)); its set-password link, valid 7 days:\n".utf8))
            print("\(UserCommand.base(config))/set-password#\(secret)")
        }
    }

    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-password", abstract: "Print a one-time link that replaces an account's password (valid 1 day).")
        @Option(help: "Email address.") var email: String

        func run() async throws {
            let config = try KaizenConfiguration.fromEnvironment()
            let (account, secret) = try await withStorage { try await UserCommand.accounts($0).resetPasswordLink(email: email) }
            FileHandle.standardError.write(Data("reset link for \(account.email), valid 1 day:\n".utf8))
            print("\(UserCommand.base(config))/set-password#\(secret)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts by last sign-in.")

        func run() async throws {
            let rows = try await withStorage { cluster in
                try await cluster.catalog.accounts(limit: 10_000, offset: 0).map { account in
                    let seen = account.lastSignInAt.map { "signed in \($0.ISO8601Format())" } ?? "never signed in"
                    return "\(account.id)\t\(account.email)\t\(account.name ?? "-")\t\(account.hasPassword ? "password set" : "no password")\t\(account.isOperator ? "operator" : "-")\t\(seen)"
                }
            }
            print(rows.joined(separator: "\n"))
        }
    }
}

/// "90s", "15m", "12h", "7d" → seconds.
func parseDuration(_ text: String) -> Int? {
    guard let unit = text.last, let value = Int(text.dropLast()), value > 0 else { return Int(text) }
    switch unit {
    case "s": return value
    case "m": return value * 60
    case "h": return value * 3600
    case "d": return value * 86400
    default: return nil
    }
}
