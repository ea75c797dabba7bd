-- Gantry's server schema, PostgreSQL dialect. Keep equivalent to ../sqlite/0001_initial.sql.
-- Ids are prefixed random hex TEXT, times are BIGINT milliseconds since the epoch, JSON is
-- TEXT, flags are 0/1 BIGINTs, bytes are BYTEA. See docs/server.md and src/store/mod.rs.

CREATE TABLE repositories (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    clone_url TEXT NOT NULL,
    forge TEXT NOT NULL,
    webhook_secret BYTEA,
    allow_unsigned BIGINT NOT NULL DEFAULT 0,
    status_url TEXT,
    status_token BYTEA,
    run_counter BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    forge TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    payload BYTEA NOT NULL,
    received_ms BIGINT NOT NULL,
    processed_ms BIGINT,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    UNIQUE (forge, delivery_id)
);
CREATE INDEX deliveries_unprocessed ON deliveries (received_ms, id) WHERE processed_ms IS NULL;
CREATE INDEX deliveries_processed ON deliveries (processed_ms) WHERE processed_ms IS NOT NULL;

CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    workflow_file TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    title TEXT NOT NULL,
    event TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    context TEXT NOT NULL,
    sources TEXT NOT NULL,
    graph TEXT NOT NULL,
    graph_version BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    conclusion TEXT,
    trusted BIGINT NOT NULL,
    concurrency_group TEXT,
    cancel_in_progress BIGINT NOT NULL DEFAULT 0,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    attempt BIGINT NOT NULL DEFAULT 1,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
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
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    leg BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
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
    lease_expires_ms BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    concurrency_group TEXT,
    timeout_ms BIGINT,
    queued_ms BIGINT,
    -- Queue order: set from a counter when the job becomes queued (ties only between
    -- concurrent PostgreSQL transactions).
    queue_seq BIGINT NOT NULL DEFAULT 0,
    started_ms BIGINT,
    finished_ms BIGINT,
    log_size BIGINT NOT NULL DEFAULT 0,
    log_stored BIGINT NOT NULL DEFAULT 0,
    log_truncated BIGINT NOT NULL DEFAULT 0,
    graph_applied BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
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
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    conclusion TEXT,
    log_start BIGINT,
    log_end BIGINT,
    started_ms BIGINT,
    finished_ms BIGINT,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE log_chunks (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    byte_offset BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, byte_offset)
);

CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    revoked BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT
);

CREATE TABLE secrets (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT REFERENCES repositories (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
-- UNIQUE (repository_id, name) with NULL (global) as one value.
CREATE UNIQUE INDEX secrets_repository_name ON secrets (repository_id, name)
    WHERE repository_id IS NOT NULL;
CREATE UNIQUE INDEX secrets_global_name ON secrets (name) WHERE repository_id IS NULL;

CREATE TABLE schedule_slots (
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    workflow_file TEXT NOT NULL,
    slot_ms BIGINT NOT NULL,
    claimed_ms BIGINT NOT NULL,
    PRIMARY KEY (repository_id, workflow_file, slot_ms)
);

CREATE TABLE status_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    context TEXT NOT NULL,
    description TEXT,
    target_url TEXT,
    created_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    sent_ms BIGINT,
    abandoned BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (run_id, seq)
);
CREATE INDEX status_outbox_unsent ON status_outbox (created_ms, run_id, seq)
    WHERE sent_ms IS NULL AND abandoned = 0;
