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
        Migration(
            2, "ingest",
            [
                """
                CREATE TABLE runs (
                    workspace_id    text NOT NULL,
                    id              text NOT NULL,
                    project_id      text NOT NULL,
                    external_run_id text NOT NULL,
                    branch          text NOT NULL,
                    commit_sha      text,
                    build_url       text,
                    status          text NOT NULL DEFAULT 'closed',
                    started_at      timestamptz,
                    finished_at     timestamptz,
                    env             jsonb NOT NULL DEFAULT '{}',
                    passed          integer NOT NULL,
                    failed          integer NOT NULL,
                    skipped         integer NOT NULL,
                    broken          integer NOT NULL,
                    flaky           integer NOT NULL,
                    baseline_run_id text,
                    new_failures    integer NOT NULL,
                    fixed           integer NOT NULL,
                    still_failing   integer NOT NULL,
                    seq             bigint NOT NULL,
                    created_at      timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id),
                    CONSTRAINT runs_external_key UNIQUE (workspace_id, project_id, external_run_id)
                )
                """,
                "CREATE INDEX runs_branch_idx ON runs (workspace_id, project_id, branch, seq DESC)",
                "CREATE INDEX runs_project_idx ON runs (workspace_id, project_id, seq DESC)",
                """
                CREATE TABLE cases (
                    workspace_id text NOT NULL,
                    id           text NOT NULL,
                    project_id   text NOT NULL,
                    case_key     text NOT NULL,
                    name         text NOT NULL,
                    suite        text,
                    full_name    text,
                    file         text,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id),
                    CONSTRAINT cases_key UNIQUE (workspace_id, project_id, case_key)
                )
                """,
                """
                CREATE TABLE case_results (
                    workspace_id  text NOT NULL,
                    run_id        text NOT NULL,
                    ordinal       integer NOT NULL,
                    case_id       text NOT NULL,
                    status        text NOT NULL,
                    duration_ms   bigint NOT NULL,
                    attempts      integer NOT NULL,
                    flaky         boolean NOT NULL,
                    regression    text,
                    error_type    text,
                    error_message text,
                    error_trace   text,
                    labels        jsonb NOT NULL DEFAULT '{}',
                    parameters    jsonb NOT NULL DEFAULT '{}',
                    attachments   text[] NOT NULL DEFAULT '{}',
                    PRIMARY KEY (workspace_id, run_id, ordinal)
                )
                """,
                "CREATE INDEX case_results_case_idx ON case_results (workspace_id, case_id, run_id)",
                """
                CREATE TABLE steps (
                    workspace_id text NOT NULL,
                    run_id       text NOT NULL,
                    case_ordinal integer NOT NULL,
                    ordinal      integer NOT NULL,
                    parent       integer,
                    depth        integer NOT NULL,
                    name         text NOT NULL,
                    status       text NOT NULL,
                    duration_ms  bigint NOT NULL,
                    attachments  text[] NOT NULL DEFAULT '{}',
                    PRIMARY KEY (workspace_id, run_id, case_ordinal, ordinal)
                )
                """,
                """
                CREATE TABLE blobs (
                    workspace_id text NOT NULL,
                    sha256       text NOT NULL,
                    size         bigint NOT NULL,
                    content_type text NOT NULL,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, sha256)
                )
                """,
                """
                CREATE TABLE upload_sessions (
                    workspace_id    text NOT NULL,
                    id              text NOT NULL,
                    project_id      text NOT NULL,
                    external_run_id text NOT NULL,
                    attachments     jsonb NOT NULL,
                    expires_at      timestamptz NOT NULL,
                    created_at      timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                """
                CREATE TABLE run_attachments (
                    workspace_id  text NOT NULL,
                    run_id        text NOT NULL,
                    attachment_id text NOT NULL,
                    sha256        text NOT NULL,
                    size          bigint NOT NULL,
                    content_type  text NOT NULL,
                    PRIMARY KEY (workspace_id, run_id, attachment_id)
                )
                """,
            ]),
            Migration(
            3, "post-ingest jobs and roll-ups",
            [
                // A durable queue: claimed with FOR UPDATE SKIP LOCKED, retried with backoff, dead after max_attempts.
                """
                CREATE TABLE jobs (
                    workspace_id text NOT NULL,
                    id           text NOT NULL,
                    kind         text NOT NULL,
                    payload      jsonb NOT NULL,
                    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'dead')),
                    attempts     integer NOT NULL DEFAULT 0,
                    max_attempts integer NOT NULL DEFAULT 8,
                    run_after    timestamptz NOT NULL DEFAULT now(),
                    locked_at    timestamptz,
                    last_error   text,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    updated_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                "CREATE INDEX jobs_ready_idx ON jobs (run_after) WHERE state = 'queued'",
                "CREATE INDEX jobs_running_idx ON jobs (locked_at) WHERE state = 'running'",
                "ALTER TABLE runs ADD COLUMN rolled_up_at timestamptz",
                """
                CREATE TABLE case_stats (
                    workspace_id      text NOT NULL,
                    case_id           text NOT NULL,
                    project_id        text NOT NULL,
                    first_seen_at     timestamptz NOT NULL,
                    last_seen_at      timestamptz NOT NULL,
                    last_run_id       text NOT NULL,
                    last_status       text NOT NULL,
                    last_failed_at    timestamptz,
                    runs              integer NOT NULL,
                    passed            integer NOT NULL,
                    failed            integer NOT NULL,
                    broken            integer NOT NULL,
                    skipped           integer NOT NULL,
                    flaky             integer NOT NULL,
                    total_duration_ms bigint NOT NULL,
                    PRIMARY KEY (workspace_id, case_id)
                )
                """,
                "CREATE INDEX case_stats_project_idx ON case_stats (workspace_id, project_id)",
                """
                CREATE TABLE project_daily (
                    workspace_id text NOT NULL,
                    project_id   text NOT NULL,
                    branch       text NOT NULL,
                    day          date NOT NULL,
                    runs         integer NOT NULL,
                    passed       integer NOT NULL,
                    failed       integer NOT NULL,
                    broken       integer NOT NULL,
                    skipped      integer NOT NULL,
                    flaky        integer NOT NULL,
                    duration_ms  bigint NOT NULL,
                    PRIMARY KEY (workspace_id, project_id, branch, day)
                )
                """,
            ]),
        Migration(
            4, "failure clusters",
            [
                // Set at ingest for failing results (Domains.FailureFingerprint); null otherwise.
                "ALTER TABLE case_results ADD COLUMN fingerprint text",
                // One row per cluster and project, maintained by the post-ingest roll-up.
                """
                CREATE TABLE failure_groups (
                    workspace_id       text NOT NULL,
                    project_id         text NOT NULL,
                    fingerprint        text NOT NULL,
                    error_type         text,
                    sample_message     text,
                    first_seen_run_id  text NOT NULL,
                    first_seen_at      timestamptz NOT NULL,
                    last_seen_run_id   text NOT NULL,
                    last_seen_at       timestamptz NOT NULL,
                    runs               integer NOT NULL,
                    occurrences        integer NOT NULL,
                    PRIMARY KEY (workspace_id, project_id, fingerprint)
                )
                """,
                "CREATE INDEX failure_groups_recent_idx ON failure_groups (workspace_id, project_id, last_seen_at DESC)",
            ]),
        Migration(
            5, "flakiness, annotations, defects and events",
            [
                // Per project: the flaky policy in force (FlakyPolicy JSON); absent means the default.
                """
                CREATE TABLE project_settings (
                    workspace_id text NOT NULL,
                    project_id   text NOT NULL,
                    flaky_policy jsonb NOT NULL,
                    updated_by   text NOT NULL,
                    updated_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, project_id)
                )
                """,
                // Per case and branch: the recent outcomes (FlakyHistory) and their verdict under the policy.
                """
                CREATE TABLE case_windows (
                    workspace_id  text NOT NULL,
                    case_id       text NOT NULL,
                    branch        text NOT NULL,
                    project_id    text NOT NULL,
                    outcomes      text NOT NULL,
                    evidence      text[] NOT NULL,
                    results       integer NOT NULL,
                    flips         integer NOT NULL,
                    retry_passes  integer NOT NULL,
                    score         float8 NOT NULL,
                    is_flaky      boolean NOT NULL,
                    last_flip_at  timestamptz,
                    updated_at    timestamptz NOT NULL,
                    PRIMARY KEY (workspace_id, case_id, branch)
                )
                """,
                "CREATE INDEX case_windows_project_idx ON case_windows (workspace_id, project_id)",
                // The case's verdict: that of its flakiest branch.
                "ALTER TABLE case_stats ADD COLUMN is_flaky boolean NOT NULL DEFAULT false",
                "ALTER TABLE case_stats ADD COLUMN flaky_score float8 NOT NULL DEFAULT 0",
                "ALTER TABLE case_stats ADD COLUMN flaky_branch text",
                "ALTER TABLE case_stats ADD COLUMN flaky_since timestamptz",
                "CREATE INDEX case_stats_flaky_idx ON case_stats (workspace_id, project_id, flaky_score DESC) WHERE is_flaky",
                // What people say about a case (PATCH /v1/cases/:id), and who said it when.
                "ALTER TABLE cases ADD COLUMN owner text",
                "ALTER TABLE cases ADD COLUMN labels text[] NOT NULL DEFAULT '{}'",
                "ALTER TABLE cases ADD COLUMN annotated_by text",
                "ALTER TABLE cases ADD COLUMN annotated_at timestamptz",
                "CREATE INDEX cases_labels_idx ON cases USING gin (labels)",
                // Two of the inventory's orders, so a page is an ordered index range, not a sort of the project.
                "CREATE INDEX cases_name_idx ON cases (workspace_id, project_id, name, id)",
                """
                CREATE INDEX case_stats_failures_idx
                ON case_stats (workspace_id, project_id, ((failed + broken)::bigint) DESC, case_id)
                """,
                """
                CREATE TABLE defects (
                    workspace_id  text NOT NULL,
                    id            text NOT NULL,
                    project_id    text NOT NULL,
                    title         text NOT NULL,
                    external_url  text,
                    status        text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved', 'false_positive')),
                    created_by    text NOT NULL,
                    created_at    timestamptz NOT NULL DEFAULT now(),
                    updated_by    text NOT NULL,
                    updated_at    timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                "CREATE INDEX defects_project_idx ON defects (workspace_id, project_id, id DESC)",
                // A defect covers cases and failure clusters (kind 'case' → case id, 'group' → fingerprint).
                """
                CREATE TABLE defect_links (
                    workspace_id text NOT NULL,
                    defect_id    text NOT NULL,
                    project_id   text NOT NULL,
                    kind         text NOT NULL CHECK (kind IN ('case', 'group')),
                    target       text NOT NULL,
                    linked_by    text NOT NULL,
                    linked_at    timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, defect_id, kind, target)
                )
                """,
                "CREATE INDEX defect_links_target_idx ON defect_links (workspace_id, project_id, kind, target)",
                // Runs with a failure attributed to the defect: counted exactly, whichever link matched.
                """
                CREATE TABLE defect_runs (
                    workspace_id text NOT NULL,
                    defect_id    text NOT NULL,
                    run_id       text NOT NULL,
                    run_at       timestamptz NOT NULL,
                    PRIMARY KEY (workspace_id, defect_id, run_id)
                )
                """,
                // The cases a cluster struck across the project, and how often; their count on the cluster.
                """
                CREATE TABLE failure_group_cases (
                    workspace_id text NOT NULL,
                    project_id   text NOT NULL,
                    fingerprint  text NOT NULL,
                    case_id      text NOT NULL,
                    occurrences  integer NOT NULL,
                    last_seen_at timestamptz NOT NULL,
                    PRIMARY KEY (workspace_id, project_id, fingerprint, case_id)
                )
                """,
                "ALTER TABLE failure_groups ADD COLUMN affected_cases integer NOT NULL DEFAULT 0",
                // A cluster's most recently struck cases, read 5 at a time.
                """
                CREATE INDEX failure_group_cases_recent_idx
                ON failure_group_cases (workspace_id, project_id, fingerprint, last_seen_at DESC, case_id)
                """,
                // Backfilling a defect's runs from a cluster's history, without scanning the project.
                "CREATE INDEX case_results_fingerprint_idx ON case_results (workspace_id, fingerprint) WHERE fingerprint IS NOT NULL",
                // Stored now, delivered by webhooks later.
                """
                CREATE TABLE events (
                    workspace_id text NOT NULL,
                    id           text NOT NULL,
                    project_id   text NOT NULL,
                    kind         text NOT NULL,
                    subject_id   text NOT NULL,
                    payload      jsonb NOT NULL,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                "CREATE INDEX events_project_idx ON events (workspace_id, project_id, id DESC)",
                // Roll-ups of a project go in finalize order; this finds an earlier run still waiting.
                "CREATE INDEX runs_pending_rollup_idx ON runs (workspace_id, project_id, seq) WHERE rolled_up_at IS NULL",
                // …and whether that run's roll-up job is still alive (a dead one is not waited for).
                "CREATE INDEX jobs_live_run_idx ON jobs (workspace_id, (payload->>'runId')) WHERE state IN ('queued', 'running')",
            ]),
        Migration(
            6, "job leases",
            [
                // A claim is a lease its worker renews; once it lapses any node takes the job back.
                "ALTER TABLE jobs ADD COLUMN lease_expires_at timestamptz",
                "ALTER TABLE jobs ADD COLUMN leased_by text",
                // Set when the worker begins the job: a job its dead worker never began gets its attempt back.
                "ALTER TABLE jobs ADD COLUMN started_at timestamptz",
                "CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running'",
            ]),
        Migration(
            7, "unique sequence numbers",
            [
                // Several nodes finalize runs of one project: the sequence number (finalize order, which
                // roll-ups follow) must be unique per project. Runs an older multi-node deployment numbered
                // twice are renumbered first, 1, 2, 3 … in their order (a no-op where numbers were right).
                """
                UPDATE runs r SET seq = n.rn
                FROM (SELECT workspace_id, id,
                             row_number() OVER (PARTITION BY workspace_id, project_id ORDER BY seq, id) AS rn
                      FROM runs) n
                WHERE r.workspace_id = n.workspace_id AND r.id = n.id AND r.seq <> n.rn
                """,
                "ALTER TABLE runs ADD CONSTRAINT runs_seq_key UNIQUE (workspace_id, project_id, seq)",
                // Likewise the workspace's write sequence of project creations: duplicates move past the
                // workspace's highest number, in their order, and the stored sequence catches up.
                """
                UPDATE projects p SET created_seq = m.top + n.rn
                FROM (SELECT workspace_id, id,
                             row_number() OVER (PARTITION BY workspace_id ORDER BY created_seq, id) AS rn
                      FROM projects q
                      WHERE EXISTS (SELECT 1 FROM projects d WHERE d.workspace_id = q.workspace_id
                                    AND d.created_seq = q.created_seq AND d.id <> q.id)) n,
                     (SELECT workspace_id, max(created_seq) AS top FROM projects GROUP BY workspace_id) m
                WHERE p.workspace_id = n.workspace_id AND p.id = n.id AND m.workspace_id = p.workspace_id
                """,
                """
                UPDATE workspace_state s SET write_seq = m.top
                FROM (SELECT workspace_id, max(created_seq) AS top FROM projects GROUP BY workspace_id) m
                WHERE s.workspace_id = m.workspace_id AND s.write_seq < m.top
                """,
                "ALTER TABLE projects ADD CONSTRAINT projects_seq_key UNIQUE (workspace_id, created_seq)",
                // The unique index serves every lookup the old one did.
                "DROP INDEX runs_project_idx",
            ]),
        Migration(
            8, "room for in-place roll-up updates",
            [
                // Every roll-up updates the stats row and the branch window of each case of the run. Free
                // room on each page lets those updates stay on the page without touching the indexes
                // (heap-only tuples), which the roll-up's cost is mostly made of. Applies to pages written
                // from now on; `VACUUM FULL` applies it to existing ones.
                "ALTER TABLE case_stats SET (fillfactor = 70)",
                "ALTER TABLE case_windows SET (fillfactor = 70)",
            ]),
        Migration(
            9, "labels index of annotated cases only",
            [
                // Nearly every case has no labels; a GIN entry for each was a tenth of a first push's cost.
                "DROP INDEX cases_labels_idx",
                "CREATE INDEX cases_labels_idx ON cases USING gin (labels) WHERE labels <> '{}'::text[]",
            ]),
        Migration(
            10, "room for every case of a page to be updated in place",
            [
                // A project's cases are written together (its first push), so a run updates every row of
                // their pages. At 70 % only about half of those updates found room on the page; the rest
                // wrote an entry into every index (measured: 10,000 contiguous updates 145–163 ms at 70 %,
                // 112–124 ms at 45 %, all heap-only). The tables take twice their packed size for it.
                "ALTER TABLE case_stats SET (fillfactor = 45)",
                "ALTER TABLE case_windows SET (fillfactor = 45)",
            ]),
        Migration(
            11, "audit log of tenant changes",
            [
                // Projects, policies, defects and case annotations: each row written in its change's transaction.
                // (Not `audit_events`: the first server holds the catalog, whose table has that name.)
                """
                CREATE TABLE workspace_audit_events (
                    workspace_id   text NOT NULL,
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
            12, "quality gates and quarantine",
            [
                // Per project: its quality gate (QualityGate JSON), evaluated inside every finalize.
                """
                CREATE TABLE project_gates (
                    workspace_id text NOT NULL,
                    project_id   text NOT NULL,
                    gate         jsonb NOT NULL,
                    updated_by   text NOT NULL,
                    updated_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, project_id)
                )
                """,
                // The gate's verdict on the run (GateVerdict JSON), as its finalize answered; null before gates.
                "ALTER TABLE runs ADD COLUMN gate jsonb",
                // Quarantined cases: still run, stored and scored, but never fail a gate.
                """
                CREATE TABLE case_quarantine (
                    workspace_id   text NOT NULL,
                    case_id        text NOT NULL,
                    project_id     text NOT NULL,
                    reason         text NOT NULL,
                    quarantined_by text NOT NULL,
                    quarantined_at timestamptz NOT NULL DEFAULT now(),
                    expires_at     timestamptz,
                    automatic      boolean NOT NULL DEFAULT false,
                    PRIMARY KEY (workspace_id, case_id)
                )
                """,
                "CREATE INDEX case_quarantine_project_idx ON case_quarantine (workspace_id, project_id, case_id)",
            ]),
        Migration(
            13, "auto-quarantine",
            [
                // Per project: whether the roll-up quarantines cases the flaky policy calls flaky, and after
                // how many consecutive clean passes it releases them.
                """
                CREATE TABLE project_quarantine_policy (
                    workspace_id   text NOT NULL,
                    project_id     text NOT NULL,
                    auto           boolean NOT NULL,
                    release_after  integer NOT NULL,
                    updated_by     text NOT NULL,
                    updated_at     timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, project_id)
                )
                """,
                // An automatic quarantine's clean passes since it began (or since its last failure).
                "ALTER TABLE case_quarantine ADD COLUMN clean_passes integer NOT NULL DEFAULT 0",
            ]),
        Migration(
            14, "same-commit flakiness evidence",
            [
                // The latest commit on which a case both passed and failed (across runs, re-runs or shards), and
                // a passing and a failing run of it: flakiness evidence beside the window's score.
                "ALTER TABLE case_stats ADD COLUMN same_commit_sha text",
                "ALTER TABLE case_stats ADD COLUMN same_commit_runs text[]",
                "ALTER TABLE case_stats ADD COLUMN same_commit_at timestamptz",
                "CREATE INDEX runs_commit_idx ON runs (workspace_id, project_id, commit_sha) WHERE commit_sha IS NOT NULL",
            ]),
        Migration(
            15, "sharded runs",
            [
                // A sharded run is stored by its first shard as `open`, without a place in the project's order: it
                // takes its sequence number (and baseline) when it closes. Readers of history skip runs without one.
                "ALTER TABLE runs ALTER COLUMN seq DROP NOT NULL",
                "ALTER TABLE runs ADD COLUMN shard_total integer",
                "ALTER TABLE runs ADD COLUMN shards_received integer NOT NULL DEFAULT 0",
                // When an open run that has heard nothing since is closed as partial.
                "ALTER TABLE runs ADD COLUMN shard_deadline timestamptz",
                """
                CREATE TABLE run_shards (
                    workspace_id text NOT NULL,
                    run_id       text NOT NULL,
                    shard_index  integer NOT NULL,
                    digest       text NOT NULL,
                    cases        integer NOT NULL,
                    -- 1 for the first shard to arrive, 2 for the next…: a case two shards report keeps the later's result.
                    arrival      integer NOT NULL,
                    received_at  timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, run_id, shard_index)
                )
                """,
            ]),
        Migration(
            16, "webhooks and their outbox",
            [
                // The signing secret is kept (HMAC needs it) only in the shard's database, never returned after it
                // was shown once; during a rotation the previous one signs too, until `previous_until`.
                """
                CREATE TABLE webhooks (
                    workspace_id    text NOT NULL,
                    id              text NOT NULL,
                    project_id      text NOT NULL,
                    url             text NOT NULL,
                    events          text[] NOT NULL,
                    format          text NOT NULL,
                    description     text NOT NULL DEFAULT '',
                    active          boolean NOT NULL DEFAULT true,
                    secret          text NOT NULL,
                    previous_secret text,
                    previous_until  timestamptz,
                    failing_since   timestamptz,
                    disabled_reason text,
                    created_by      text NOT NULL,
                    created_at      timestamptz NOT NULL DEFAULT now(),
                    updated_at      timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                "CREATE INDEX webhooks_project_idx ON webhooks (workspace_id, project_id)",
                // The outbox: one row per (event, webhook), written with the event in the transaction that caused it.
                // Delivered in event order per webhook (ids are time-ordered); `leased_until` is a sender's claim.
                """
                CREATE TABLE webhook_deliveries (
                    workspace_id    text NOT NULL,
                    id              text NOT NULL,
                    webhook_id      text NOT NULL,
                    event_id        text NOT NULL,
                    event_kind      text NOT NULL,
                    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                    attempts        integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    leased_until    timestamptz,
                    last_status     integer,
                    last_latency_ms integer,
                    last_response   text,
                    last_error      text,
                    delivered_at    timestamptz,
                    created_at      timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                "CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (workspace_id, webhook_id, event_id)",
                "CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (workspace_id, webhook_id, event_id) WHERE state = 'pending'",
            ]),
        Migration(
            17, "event log positions for live streams",
            [
                // A stream resumes after a position, so positions must follow commit order: ids and timestamps are
                // taken before commit and would let a late commit slip behind a reader. Rows are written without one
                // and numbered after they commit by the sequencer (one at a time per server, under an advisory
                // lock), so a reader that saw position p can never be handed a row numbered below p later.
                // (No NOTIFY from the writers: PostgreSQL serializes the commits of notifying transactions, which
                // would make every finalize wait for the others' commits. The sequencer polls this partial index.)
                "CREATE SEQUENCE event_positions",
                "ALTER TABLE events ADD COLUMN pos bigint",
                """
                UPDATE events e SET pos = o.n FROM (
                    SELECT workspace_id, id, row_number() OVER (ORDER BY created_at, id) AS n FROM events) o
                WHERE e.workspace_id = o.workspace_id AND e.id = o.id
                """,
                "SELECT setval('event_positions', COALESCE((SELECT max(pos) FROM events), 0) + 1, false)",
                "CREATE UNIQUE INDEX events_pos_idx ON events (workspace_id, pos) WHERE pos IS NOT NULL",
                "CREATE INDEX events_server_pos_idx ON events (pos) WHERE pos IS NOT NULL",
                "CREATE INDEX events_unnumbered_idx ON events (created_at, id) WHERE pos IS NULL",
            ]),
        Migration(
            18, "one row of steps per case",
            [
                // A case's steps are only ever read whole (the case's page), so they are one row, not one per step: at
                // three steps a case the step rows cost a finalize as much PostgreSQL time as its results (psql, 200,000
                // cases: 2.3–2.5 s for 600,000 step rows against 0.7–0.9 s for 200,000 of these). Each step is
                // [ordinal, parent, depth, name, status, durationMs, [attachment ids]], in ordinal order.
                """
                CREATE TABLE case_steps (
                    workspace_id text NOT NULL,
                    run_id       text NOT NULL,
                    case_ordinal integer NOT NULL,
                    steps        text NOT NULL,
                    PRIMARY KEY (workspace_id, run_id, case_ordinal)
                )
                """,
                """
                INSERT INTO case_steps (workspace_id, run_id, case_ordinal, steps)
                SELECT workspace_id, run_id, case_ordinal,
                       json_agg(json_build_array(ordinal, parent, depth, name, status, duration_ms, attachments) ORDER BY ordinal)::text
                FROM steps GROUP BY workspace_id, run_id, case_ordinal
                """,
                "DROP TABLE steps",
            ]),
        Migration(
            19, "failures order sorted per page",
            [
                // Its key, failed + broken, changes with every failing result, and a row whose indexed column
                // changes cannot be updated in place: each failing case's stats update wrote an entry into every
                // index of case_stats (psql, a roll-up's update of 100,000 stats with a tenth failing: 1.23–1.24 s
                // with this index, 0.78–0.87 s without). The inventory sorts the project's stats per page instead,
                // as it does for the last-failure order (59–61 ms at 100,000 cases, PostgresInventoryRepository).
                "DROP INDEX case_stats_failures_idx",
            ]),
        Migration(
            20, "a cluster's recent cases kept on the cluster",
            [
                // The cluster list shows each cluster's five most recently struck cases. An index ordered by a
                // pair's last_seen_at served that, but every later failure of a pair changes that column, so no
                // pair update could stay in place: each wrote a new entry into both indexes (psql, 10,000 pairs
                // upserted again: 240–345 ms with the index, 150–231 without, 81–98 without and with room on
                // the page). The roll-up now keeps the five on the cluster's row — the top five of the stored
                // five and the batch's pairs is the top five of all pairs, as a pair's last_seen_at only grows.
                "ALTER TABLE failure_groups ADD COLUMN recent_cases text[] NOT NULL DEFAULT '{}'",
                "ALTER TABLE failure_groups ADD COLUMN recent_seen timestamptz[] NOT NULL DEFAULT '{}'",
                """
                UPDATE failure_groups g SET (recent_cases, recent_seen) = (
                    SELECT COALESCE(array_agg(t.case_id ORDER BY t.last_seen_at DESC, t.case_id), '{}'),
                           COALESCE(array_agg(t.last_seen_at ORDER BY t.last_seen_at DESC, t.case_id), '{}')
                    FROM (SELECT fc.case_id, fc.last_seen_at FROM failure_group_cases fc
                          WHERE fc.workspace_id = g.workspace_id AND fc.project_id = g.project_id AND fc.fingerprint = g.fingerprint
                          ORDER BY fc.last_seen_at DESC, fc.case_id LIMIT 5) t)
                """,
                "DROP INDEX failure_group_cases_recent_idx",
                "ALTER TABLE failure_group_cases SET (fillfactor = 50)",
            ]),
    ]
}
