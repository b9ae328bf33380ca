import Dispatch
import Foundation
import KaizenTestSupport
import Storage
import Testing

/// The README's first set-up command, as a user runs it: the `kaizen` binary on its embedded
/// default, first start and second start, operator subcommands, graceful shutdown.
@Suite(.serialized) struct EmbeddedDefaultTests {
    static var binary: String { KaizenNode.binary }

    /// `kaizen serve` on the embedded default of `dataDir`. A start that fails is recorded with the
    /// node's output and PostgreSQL's log.
    func start(dataDir: String, port: Int) async throws -> KaizenNode {
        do {
            return try await KaizenNode.start(
                port: port, environment: ["KAIZEN_DATA_DIR": dataDir, "KAIZEN_DATABASE_URLS": "", "KAIZEN_LOG_LEVEL": "info"],
                logPath: "\(dataDir)-serve-\(UUID().uuidString.prefix(6)).log")
        } catch {
            let pgLog = (try? String(contentsOfFile: dataDir + "/postgres/server.log", encoding: .utf8)) ?? "(none)"
            Issue.record("\(error)\npostgres log:\n\(pgLog.suffix(2000))")
            throw error
        }
    }

    func stop(_ running: KaizenNode, signal: Int32) async throws -> Int32 {
        let status = await running.stop(signal: signal, timeout: .seconds(60))
        #expect(status != nil, "kaizen did not stop on signal \(signal)")
        return status ?? -1
    }

    /// Runs `kaizen` to completion on the embedded default of `dataDir`.
    func cli(_ arguments: [String], dataDir: String) async throws -> (status: Int32, output: String, error: String) {
        try await runCommand([Self.binary] + arguments, environment: ["KAIZEN_DATA_DIR": dataDir, "KAIZEN_DATABASE_URLS": ""])
    }

    func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// Issue 11 §4: another local account can neither connect to the embedded PostgreSQL nor read a
    /// blob; the password, the data directory and the blobs are the owner's alone.
    func checkOwnerOnly(dataDir: String, admin: APIClient) async throws {
        let blob = Data("secret attachment".utf8)
        let digest = SHA256Hex.of(blob)
        let started = try await admin.post(
            "/v1/ingest/kensho/init",
            json: ["projectSlug": "web", "externalRunId": "perm", "attachments": [
                ["id": "a.txt", "sha256": digest, "size": blob.count, "contentType": "text/plain"]]])
        let url = try #require((started.object["presigned"] as? [[String: Any]])?.first?["url"] as? String)
        #expect(try await APIClient(baseURL: "", token: nil).put(url, raw: blob).status == 201)
        let blobPath = "\(dataDir)/blobs/\(digest.prefix(2))/\(digest.dropFirst(2).prefix(2))/\(digest)"
        #expect(FileManager.default.fileExists(atPath: blobPath))

        #expect(mode(dataDir) & 0o007 == 0, "data directory mode \(String(mode(dataDir), radix: 8))")
        #expect(mode(dataDir + "/postgres") == 0o700)
        #expect(mode(dataDir + "/postgres/kaizen.password") == 0o600)
        #expect(mode(dataDir + "/blobs") == 0o700)
        #expect(mode(blobPath) == 0o600)
        let hba = try String(contentsOfFile: dataDir + "/postgres/pg_hba.conf", encoding: .utf8)
        #expect(hba.contains("scram-sha-256") && !hba.contains("trust"))

        let pid = try String(contentsOfFile: dataDir + "/postgres/postmaster.pid", encoding: .utf8)
        let port = try #require(pid.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(3).first.map(String.init))
        let psql = (try? EmbeddedPostgres.binDirectory()).map { "\($0)/psql" }.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil } ?? "psql"
        let connect = [psql, "-h", "127.0.0.1", "-p", port, "-U", "kaizen", "-d", "postgres", "-w", "-tAc", "SELECT 1"]
        // Without the password nobody gets in — not even this account (-w: never prompt).
        let mine = try await runCommand(connect, environment: ["PGPASSWORD": ""])
        #expect(mine.status != 0, "connected without a password: \(mine.output)")
        #expect(mine.error.contains("password"), "\(mine.error)")
        let password = try String(contentsOfFile: dataDir + "/postgres/kaizen.password", encoding: .utf8)
        let withPassword = try await runCommand(connect, environment: ["PGPASSWORD": password])
        #expect(withPassword.status == 0 && withPassword.output.contains("1"), "\(withPassword.error)")
        if getuid() == 0 {
            // Another local account: no way in, no blob, no password file.
            let other = ["/usr/sbin/runuser", "-u", "nobody", "--"]
            #expect(try await runCommand(other + connect, environment: ["PGPASSWORD": ""]).status != 0)
            #expect(try await runCommand(other + ["/bin/cat", blobPath], environment: [:]).status != 0)
            #expect(try await runCommand(other + ["/bin/cat", dataDir + "/postgres/kaizen.password"], environment: [:]).status != 0)
            #expect(try await runCommand(other + ["/bin/ls", dataDir + "/blobs"], environment: [:]).status != 0)
        }
    }

    @Test func firstStartSecondStartAndOperatorCommands() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no kaizen binary at \(Self.binary)")
        let dataDir = "/tmp/kaizen-e2e-\(UUID().uuidString.prefix(8))"
        defer {
            try? FileManager.default.removeItem(atPath: dataDir)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
            where file.hasPrefix(String(dataDir.dropFirst(5))) {
                try? FileManager.default.removeItem(atPath: "/tmp/" + file)
            }
        }
        let port = try EmbeddedPostgres.freePort()
        let base = "http://127.0.0.1:\(port)"

        // First start: provisions PostgreSQL, creates `default` and writes the first token (0600).
        let first = try await start(dataDir: dataDir, port: port)
        #expect(first.output.contains("First start: created workspace 'default'"))
        let tokenPath = dataDir + "/first-token.txt"
        let attributes = try FileManager.default.attributesOfItem(atPath: tokenPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = APIClient(baseURL: base, token: token)
        #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)

        try await checkOwnerOnly(dataDir: dataDir, admin: admin)

        // Operators mint tokens and create workspaces while the server runs.
        let minted = try await cli(
            ["token", "create", "--workspace", "default", "--class", "user", "--user", "ops@example.com", "--ttl", "1h",
             "--role", "viewer"], dataDir: dataDir)
        #expect(minted.status == 0, "\(minted.error)")
        let viewer = admin.with(token: minted.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try await viewer.get("/v1/projects").array.count == 1)
        #expect(try await viewer.post("/v1/projects", json: ["slug": "x", "name": "x"]).status == 403)
        // A workspace token that expires, listed with its state and last use, then deleted for good.
        let expiring = try await cli(
            ["token", "create", "--workspace", "default", "--role", "member", "--ttl", "7d", "--name", "nightly"], dataDir: dataDir)
        #expect(expiring.status == 0, "\(expiring.error)")
        #expect(expiring.error.contains("expires"))
        let expiringClient = admin.with(token: expiring.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try await expiringClient.get("/v1/projects").status == 200)
        let listed = try await cli(["token", "list", "--workspace", "default"], dataDir: dataDir)
        let line = try #require(listed.output.split(separator: "\n").first { $0.hasSuffix("\tnightly") })
        #expect(line.contains("\tactive\t"))
        let tokenID = String(line.prefix { $0 != "\t" })
        #expect(try await cli(["token", "create", "--workspace", "default", "--ttl", "800d"], dataDir: dataDir).status != 0)
        let deleted = try await cli(["token", "delete", "--workspace", "default", tokenID], dataDir: dataDir)
        #expect(deleted.status == 0, "\(deleted.error)")
        // The running server is told through the catalog.
        try await waitUntil("the deleted token is refused") { try await expiringClient.get("/v1/projects").status == 401 }
        #expect(try await cli(["token", "delete", "--workspace", "default", tokenID], dataDir: dataDir).status != 0)

        // People: the first start's owner set-up link (0600), then an account an operator creates, its
        // one-time link, sign-in, and a reset link; the CLI lists accounts by last sign-in.
        #expect(first.output.contains("Set up the owner account with the link in"))
        let ownerLinkPath = dataDir + "/first-owner-link.txt"
        #expect(mode(ownerLinkPath) == 0o600)
        let ownerLink = try String(contentsOfFile: ownerLinkPath, encoding: .utf8).split(separator: "\n")[0]
        #expect(ownerLink.hasPrefix(base + "/invitations/accept#kln_"))
        let anonymous = APIClient(baseURL: base, token: nil)
        let owner = try await anonymous.post(
            "/v1/auth/invitations/accept",
            json: ["invitation": String(ownerLink.split(separator: "#")[1]), "email": "owner@example.com", "password": "owner passphrase"])
        #expect(owner.status == 200, "\(owner.text)")
        let created = try await cli(
            ["user", "create", "--email", "Dev@Example.com", "--name", "Dev", "--workspace", "default", "--role", "member"],
            dataDir: dataDir)
        #expect(created.status == 0, "\(created.error)")
        let setLink = try #require(created.output.split(separator: "#").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(try await cli(["user", "create", "--email", "dev@example.com"], dataDir: dataDir).status == 0, "no password yet: a new link")
        #expect(try await anonymous.post("/v1/auth/password-links/redeem", json: ["link": setLink, "password": "dev passphrase 1"]).status == 204)
        #expect(try await cli(["user", "create", "--email", "dev@example.com"], dataDir: dataDir).status != 0, "has a password now")
        let signIn = try await anonymous.post("/v1/auth/login", json: ["email": "dev@example.com", "password": "dev passphrase 1"])
        #expect(signIn.status == 200, "\(signIn.text)")
        let reset = try await cli(["user", "reset-password", "--email", "dev@example.com"], dataDir: dataDir)
        #expect(reset.status == 0 && reset.error.contains("valid 1 day"), "\(reset.error)")
        let resetLink = try #require(reset.output.split(separator: "#").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(try await anonymous.post("/v1/auth/password-links/redeem", json: ["link": resetLink, "password": "dev passphrase 2"]).status == 204)
        #expect(try await anonymous.post("/v1/auth/login", json: ["email": "dev@example.com", "password": "dev passphrase 2"]).status == 200)
        let users = try await cli(["user", "list"], dataDir: dataDir)
        #expect(users.output.split(separator: "\n").first?.contains("dev@example.com") == true, "\(users.output)")
        #expect(users.output.contains("owner@example.com\t-\tpassword set\toperator"))

        let workspace = try await cli(["workspace", "create", "--slug", "acme", "--name", "Acme"], dataDir: dataDir)
        #expect(workspace.status == 0, "\(workspace.error)")
        let duplicate = try await cli(["workspace", "create", "--slug", "acme"], dataDir: dataDir)
        #expect(duplicate.status != 0)
        #expect(duplicate.error.contains("already exists"))

        // SIGTERM: graceful shutdown, and the embedded PostgreSQL it started is stopped.
        #expect(try await stop(first, signal: SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: dataDir + "/postgres/postmaster.pid"))

        // Second start: everything reused, no new token.
        let second = try await start(dataDir: dataDir, port: port)
        #expect(!second.output.contains("First start"))
        #expect(try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == token)
        let projects = try await admin.get("/v1/projects")
        #expect(projects.status == 200)
        #expect(projects.array.compactMap { $0["slug"] as? String } == ["web"])
        #expect(try await admin.get("/healthz").status == 200)
        #expect(try await stop(second, signal: SIGINT) == 0)
    }
}

import Crypto

enum SHA256Hex {
    static func of(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }
}
