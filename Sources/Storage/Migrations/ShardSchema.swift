enum ShardSchema {
    static let migrations: [Migration] = [
        Migration(
            1, "tenancy",
            [
                // Which position in KAIZEN_DATABASE_URLS this server holds; checked at start so a reordered list
                // cannot silently send workspaces to the wrong server.
                """
                CREATE TABLE kaizen_node (
                    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    server_index integer NOT NULL
                )
                """,
                """
                CREATE TABLE workspace_state (
                    workspace_id text PRIMARY KEY,
                    write_seq    bigint NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE projects (
                    workspace_id   text NOT NULL,
                    id             text NOT NULL,
                    slug           text NOT NULL,
                    name           text NOT NULL,
                    access_mode    text NOT NULL CHECK (access_mode IN ('team', 'private')),
                    default_branch text NOT NULL,
                    created_seq    bigint NOT NULL,
                    created_at     timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id),
                    CONSTRAINT projects_slug_key UNIQUE (workspace_id, slug)
                )
                """,
            ]),
    ]
}
