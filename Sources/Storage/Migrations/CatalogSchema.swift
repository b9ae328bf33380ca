enum CatalogSchema {
    static let migrations: [Migration] = [
        Migration(
            1, "catalog",
            [
                """
                CREATE TABLE shards (
                    shard_id     integer PRIMARY KEY,
                    server_index integer NOT NULL CHECK (server_index >= 0)
                )
                """,
                """
                CREATE TABLE workspaces (
                    id         text PRIMARY KEY,
                    slug       text NOT NULL,
                    name       text NOT NULL,
                    shard_id   integer NOT NULL REFERENCES shards (shard_id),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    CONSTRAINT workspaces_slug_key UNIQUE (slug)
                )
                """,
                "CREATE INDEX workspaces_shard_idx ON workspaces (shard_id)",
                """
                CREATE TABLE users (
                    id         text PRIMARY KEY,
                    email      text NOT NULL,
                    name       text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    CONSTRAINT users_email_key UNIQUE (email)
                )
                """,
                """
                CREATE TABLE memberships (
                    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
                    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    role         text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, user_id)
                )
                """,
                "CREATE INDEX memberships_user_idx ON memberships (user_id)",
                """
                CREATE TABLE tokens (
                    id           text PRIMARY KEY,
                    secret_hash  text NOT NULL,
                    hint         text NOT NULL,
                    class        text NOT NULL CHECK (class IN ('workspace', 'user')),
                    name         text NOT NULL,
                    -- workspace tokens: the workspace they are bound to; user tokens: the workspace that issued them
                    workspace_id text REFERENCES workspaces (id) ON DELETE CASCADE,
                    role         text CHECK (role IN ('admin', 'member', 'viewer')),
                    user_id      text REFERENCES users (id) ON DELETE CASCADE,
                    created_by   text,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    expires_at   timestamptz,
                    revoked_at   timestamptz,
                    CONSTRAINT tokens_secret_hash_key UNIQUE (secret_hash),
                    CONSTRAINT tokens_class_shape CHECK (
                        (class = 'workspace' AND workspace_id IS NOT NULL AND role IS NOT NULL AND user_id IS NULL)
                        OR (class = 'user' AND user_id IS NOT NULL AND expires_at IS NOT NULL))
                )
                """,
                "CREATE INDEX tokens_workspace_idx ON tokens (workspace_id)",
            ]),
            Migration(
            2, "server secrets",
            [
                // Shared by every node: e.g. the key that signs upload URLs.
                """
                CREATE TABLE server_secrets (
                    name       text PRIMARY KEY,
                    value      text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
            ]),
        Migration(
            3, "token scopes",
            [
                // A user token acts only in the workspace that issued it, at most with the role stored on it,
                // and in workspaces it created itself (issue 11: a credential never exceeds its issuer).
                "ALTER TABLE workspaces ADD COLUMN created_by_token text",
                "CREATE INDEX workspaces_created_by_token_idx ON workspaces (created_by_token) WHERE created_by_token IS NOT NULL",
            ]),
        Migration(
            4, "when tokens were last used",
            [
                // Written by each node every flush period from what it saw, not once per request.
                "ALTER TABLE tokens ADD COLUMN last_used_at timestamptz",
            ]),
        Migration(
            5, "accounts, owners, invitations, audit log",
            [
                "ALTER TABLE memberships DROP CONSTRAINT memberships_role_check",
                "ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'))",
                "ALTER TABLE tokens DROP CONSTRAINT tokens_role_check",
                "ALTER TABLE tokens ADD CONSTRAINT tokens_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'))",
                // Emails are stored lower-cased; the index makes "unique, case-insensitive" hold regardless.
                "CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))",
                "ALTER TABLE users ADD COLUMN password_hash text",
                "ALTER TABLE users ADD COLUMN password_changed_at timestamptz",
                "ALTER TABLE users ADD COLUMN last_sign_in_at timestamptz",
                "ALTER TABLE users ADD COLUMN operator boolean NOT NULL DEFAULT false",
                // One-time set-password and reset links: only the SHA-256 of the secret is kept.
                """
                CREATE TABLE account_links (
                    id          text PRIMARY KEY,
                    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    purpose     text NOT NULL CHECK (purpose IN ('set_password', 'reset_password')),
                    secret_hash text NOT NULL,
                    created_at  timestamptz NOT NULL DEFAULT now(),
                    expires_at  timestamptz NOT NULL,
                    used_at     timestamptz,
                    CONSTRAINT account_links_secret_hash_key UNIQUE (secret_hash)
                )
                """,
                "CREATE INDEX account_links_user_idx ON account_links (user_id)",
                """
                CREATE TABLE invitations (
                    id           text PRIMARY KEY,
                    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
                    email        text NOT NULL,
                    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                    secret_hash  text NOT NULL,
                    created_by   text,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    expires_at   timestamptz NOT NULL,
                    accepted_at  timestamptz,
                    accepted_by  text REFERENCES users (id) ON DELETE SET NULL,
                    revoked_at   timestamptz,
                    -- The first start's owner set-up link: any email (given on acceptance), and an operator.
                    grants_operator boolean NOT NULL DEFAULT false,
                    CONSTRAINT invitations_secret_hash_key UNIQUE (secret_hash)
                )
                """,
                "CREATE INDEX invitations_workspace_idx ON invitations (workspace_id, created_at DESC)",
                // Changes to the catalog's part of a workspace (tokens, members, invitations), each written in
                // the transaction of its change.
                """
                CREATE TABLE audit_events (
                    workspace_id   text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
                    id             text NOT NULL,
                    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
                    actor_type     text NOT NULL,
                    actor_id       text NOT NULL,
                    client_address text,
                    request_id     text,
                    action         text NOT NULL,
                    target_type    text NOT NULL,
                    target_id      text NOT NULL,
                    details        jsonb NOT NULL DEFAULT '{}',
                    PRIMARY KEY (workspace_id, id)
                )
                """,
            ]),
        Migration(
            6, "notifications",
            [
                // A person's inbox. `seq` is the stream's order: notifications are written by one notifier at a
                // time (an advisory lock), so a stream that saw seq n is never handed a smaller one later.
                """
                CREATE TABLE notifications (
                    seq          bigserial PRIMARY KEY,
                    id           text NOT NULL UNIQUE,
                    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
                    project_id   text,
                    project_slug text,
                    category     text NOT NULL,
                    severity     text NOT NULL,
                    title        text NOT NULL,
                    body         text NOT NULL,
                    url          text,
                    payload      jsonb NOT NULL DEFAULT '{}',
                    event_id     text NOT NULL,
                    read_at      timestamptz,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    CONSTRAINT notifications_event_key UNIQUE (user_id, workspace_id, event_id)
                )
                """,
                "CREATE INDEX notifications_user_idx ON notifications (user_id, seq DESC)",
                "CREATE INDEX notifications_unread_idx ON notifications (user_id, seq) WHERE read_at IS NULL",
                // What reaches a person from a project; no row means the defaults of their role.
                """
                CREATE TABLE notification_preferences (
                    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
                    project_id   text NOT NULL,
                    categories   text[] NOT NULL,
                    updated_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (user_id, workspace_id, project_id)
                )
                """,
                // How far the notifier has read each server's event log (positions are per server).
                """
                CREATE TABLE notifier_cursors (
                    server_index integer PRIMARY KEY,
                    pos          bigint NOT NULL
                )
                """,
            ]),
    ]
}
