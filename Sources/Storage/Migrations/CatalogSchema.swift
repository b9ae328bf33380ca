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
    ]
}
