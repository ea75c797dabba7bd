-- Gantry's server schema, SQLite dialect. Keep equivalent to ../postgres/0001_initial.sql.
-- Ids are prefixed random hex TEXT, times are INTEGER milliseconds since the epoch, JSON is
-- TEXT, flags are 0/1 INTEGERs, bytes are BLOBs. See docs/server.md and src/store/mod.rs.

CREATE TABLE repositories (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    clone_url TEXT NOT NULL,
    forge TEXT NOT NULL,
    webhook_secret BLOB,
    allow_unsigned INTEGER NOT NULL DEFAULT 0,
    status_url TEXT,
    status_token BLOB,
    run_counter INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    forge TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    payload BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    processed_ms INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    UNIQUE (forge, delivery_id)
);
CREATE INDEX deliveries_unprocessed ON deliveries (received_ms, id) WHERE processed_ms IS NULL;
CREATE INDEX deliveries_processed ON deliveries (processed_ms) WHERE processed_ms IS NOT NULL;

CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    workflow_file TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    title TEXT NOT NULL,
    event TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    context TEXT NOT NULL,
    sources TEXT NOT NULL,
    graph TEXT NOT NULL,
    graph_version INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    conclusion TEXT,
    trusted INTEGER NOT NULL,
    concurrency_group TEXT,
    cancel_in_progress INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    delivery_id TEXT REFERENCES deliveries (id) ON DELETE SET NULL,
    UNIQUE (repository_id, number)
);
CREATE INDEX runs_recent ON runs (created_ms, id);
CREATE INDEX runs_repository_recent ON runs (repository_id, created_ms, id);
CREATE INDEX runs_active ON runs (status) WHERE status <> 'completed';
CREATE INDEX runs_delivery ON runs (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX runs_concurrency_group ON runs (concurrency_group)
    WHERE concurrency_group IS NOT NULL;

CREATE TABLE agents (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    leg INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    secret_scope TEXT NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL,
    conclusion TEXT,
    reason TEXT,
    outputs TEXT,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    lease_id TEXT,
    lease_expires_ms INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    concurrency_group TEXT,
    timeout_ms INTEGER,
    queued_ms INTEGER,
    -- Queue order: set from a counter when the job becomes queued (ties only between
    -- concurrent PostgreSQL transactions).
    queue_seq INTEGER NOT NULL DEFAULT 0,
    started_ms INTEGER,
    finished_ms INTEGER,
    log_size INTEGER NOT NULL DEFAULT 0,
    log_stored INTEGER NOT NULL DEFAULT 0,
    log_truncated INTEGER NOT NULL DEFAULT 0,
    graph_applied INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    UNIQUE (run_id, key, leg, attempt)
);
CREATE INDEX jobs_queue ON jobs (queue_seq, id) WHERE status = 'queued';
CREATE INDEX jobs_queue_seq ON jobs (queue_seq);
CREATE INDEX jobs_leases ON jobs (lease_expires_ms) WHERE status = 'running';
CREATE INDEX jobs_running_group ON jobs (concurrency_group) WHERE status = 'running';
CREATE INDEX jobs_agent ON jobs (agent_id) WHERE status = 'running';
CREATE INDEX jobs_unapplied ON jobs (finished_ms, id)
    WHERE status = 'completed' AND graph_applied = 0;

CREATE TABLE steps (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    conclusion TEXT,
    log_start INTEGER,
    log_end INTEGER,
    started_ms INTEGER,
    finished_ms INTEGER,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE log_chunks (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    byte_offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, byte_offset)
);

CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER
);

CREATE TABLE secrets (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT REFERENCES repositories (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- UNIQUE (repository_id, name) with NULL (global) as one value.
CREATE UNIQUE INDEX secrets_repository_name ON secrets (repository_id, name)
    WHERE repository_id IS NOT NULL;
CREATE UNIQUE INDEX secrets_global_name ON secrets (name) WHERE repository_id IS NULL;

CREATE TABLE schedule_slots (
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    workflow_file TEXT NOT NULL,
    slot_ms INTEGER NOT NULL,
    claimed_ms INTEGER NOT NULL,
    PRIMARY KEY (repository_id, workflow_file, slot_ms)
);

CREATE TABLE status_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    context TEXT NOT NULL,
    description TEXT,
    target_url TEXT,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    abandoned INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (run_id, seq)
);
CREATE INDEX status_outbox_unsent ON status_outbox (created_ms, run_id, seq)
    WHERE sent_ms IS NULL AND abandoned = 0;
