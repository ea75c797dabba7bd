//! The server's durable state, in SQLite (the default, one file) or PostgreSQL, through one
//! `sqlx` `AnyPool`. Every other module reads and writes the database through [`Db`]: one method
//! per query, named `get_` (error if absent), `find_` (`Option`), `list_`, `insert_`, `update_`,
//! `delete_`, plus the operations of the scheduler and the agent API (claim a job, renew a lease,
//! append a log chunk, finish a job...). No SQL lives outside this module.
//!
//! # Guarantees
//!
//! - **One transaction per operation.** Every method that changes something is a single
//!   transaction: it happens entirely or not at all, also across a crash (S4).
//! - **Writers never see "database is locked".** On SQLite the writers of this process take
//!   turns on an async mutex and open their transaction with `BEGIN IMMEDIATE`, so the write
//!   lock is taken up front (a deferred transaction that upgrades can fail without waiting);
//!   the busy timeout is set before anything else on each connection and covers other
//!   processes; WAL lets readers run beside the writer (S1). On PostgreSQL writers run
//!   concurrently and use row locks (`FOR UPDATE`, `SKIP LOCKED` for claiming).
//! - **Transient failures are retried inside the store**, a bounded number of times with
//!   backoff: busy/locked SQLite, lost PostgreSQL connections, serialization failures and
//!   deadlocks, pool timeouts. A transaction is only run again when it surely did not commit
//!   (the failure came before `COMMIT`, or the server says it rolled back). When retries run
//!   out the caller gets [`StoreError::Unavailable`] (503): a transient failure never becomes a
//!   different answer, such as "not found" or a failed job (S2).
//! - **Nothing is acknowledged before it is committed**: every method returns after `COMMIT`.
//! - **Idempotent agent writes.** Log chunks, events and finishes can be sent again after a
//!   lost answer: the store recognises what it already has.
//! - **Time comes from the caller** (`now_ms` arguments, milliseconds since the epoch) so the
//!   scheduler's clock can be injected in tests.
//!
//! # Data model
//!
//! The tables are those of docs/server.md, in `crates/server/migrations/{sqlite,postgres}`
//! (equivalent schemas, applied at connect). Ids are prefixed random hex TEXT ([`ids`]); times
//! are BIGINT milliseconds; JSON is TEXT; flags are 0/1 integers; log bytes and sealed secrets
//! are BLOB/BYTEA. Additions to the design table: `repositories.run_counter` (run numbers),
//! `runs.title`, `runs.graph_version` (optimistic concurrency for the run graph),
//! `runs.cancel_requested`, `jobs.timeout_ms`, `jobs.queue_seq` (queue order),
//! `jobs.log_stored` and `jobs.log_truncated` (the per-job log cap), `jobs.graph_applied`
//! (finished jobs the run graph has not taken in yet), `deliveries.next_attempt_ms`,
//! `status_outbox.next_attempt_ms` and `abandoned`, and `log_chunks.byte_offset` (`offset` is
//! reserved in PostgreSQL).
//!
//! # Operations by caller
//!
//! Each is one transaction; the method docs state the exact guarantees.
//!
//! - **Webhook**: [`Db::find_repository_by_name`], [`Db::insert_delivery`] (a redelivery is
//!   [`DeliveryInsert::Duplicate`], not an error).
//! - **Ingester**: [`Db::list_unprocessed_deliveries`] (oldest first),
//!   [`Db::insert_runs_for_delivery`] (all runs, first jobs and statuses of a delivery, and
//!   the delivery marked processed; idempotent), [`Db::mark_delivery_processed`],
//!   [`Db::record_delivery_attempt_failed`] (retry later).
//! - **Scheduler**: [`Db::insert_run_with_jobs`] (manual and scheduled runs; numbered per
//!   repository), [`Db::list_unapplied_jobs`] then [`Db::update_run_graph`] (graph state,
//!   new/queued/cancelled jobs, statuses; refused with `Conflict` if the run moved on),
//!   [`Db::expire_leases`] then [`Db::insert_retry_attempt`], [`Db::list_timed_out_jobs`],
//!   [`Db::request_cancel`], [`Db::list_queued_jobs`], [`Db::list_active_runs`],
//!   [`Db::list_active_runs_in_group`], [`Db::claim_schedule_slot`].
//! - **Agent API**: [`Db::register_agent`], [`Db::find_agent_by_credential_hash`],
//!   [`Db::touch_agent`], [`Db::claim_job`] (exactly one claimer wins a job),
//!   [`Db::renew_lease`], [`Db::append_log_chunk`], [`Db::insert_job_events`],
//!   [`Db::upsert_step`], [`Db::finish_job`]; all but the first four refuse a stale lease,
//!   and the last four can be repeated safely. [`Db::list_secrets_for_repository`] gives the
//!   sealed secrets of an assignment.
//! - **Status sender**: [`Db::list_unsent_statuses`] (in order), [`Db::mark_status_sent`],
//!   [`Db::mark_status_attempt_failed`].
//! - **REST API and web UI**: `get_`/`find_`/`list_` of every table, [`Db::list_runs`]
//!   (filters, keyset pages), [`Db::read_log`] and [`Db::log_state`] (ranges, live logs),
//!   [`Db::list_job_events`], [`Db::list_steps`], tokens, secrets (metadata only in lists).
//!
//! # Errors
//!
//! [`StoreError`] maps to HTTP: `NotFound` 404, `Conflict` 409, `Gone` 410, `Unavailable` 503,
//! the rest 500. Lease writes have their own refusals ([`LogAppendError`], [`FinishError`]).

/// Runs `$body` (an expression with `$conn: &mut AnyConnection` in scope, giving
/// `Result<T, StoreError>`; `?` and `return` leave the body, not the caller) in one write
/// transaction of `$db`, committed when it gives `Ok`, rolled back otherwise. After a transient
/// failure the whole body runs again, in a new transaction, if the first surely did not
/// commit; so the body must have no effect outside the transaction. Evaluates to
/// `Result<T, StoreError>`.
///
/// A macro rather than a method taking an async closure: such a closure's future is generic
/// over the connection's lifetime, and the compiler then cannot prove the caller's future
/// `Send`, which axum handlers and `tokio::spawn` need.
macro_rules! write_tx {
    ($db:expr, $op:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::store::Db = $db;
        let mut attempt: u32 = 0;
        loop {
            let turn = db.writer_turn().await;
            let outcome = match db.acquire().await {
                Ok(mut pooled) => {
                    let (outcome, sound) = match db.begin_write(&mut pooled).await {
                        Ok(mut tx) => {
                            let result: Result<_, $crate::store::StoreError> = async {
                                let $conn: &mut sqlx::AnyConnection = &mut tx;
                                $body
                            }
                            .await;
                            db.end_write(tx, result).await
                        }
                        Err(error) => (Err((error, true)), true),
                    };
                    if !sound {
                        pooled.close_on_drop();
                    }
                    outcome
                }
                Err(error) => Err((error, true)),
            };
            drop(turn);
            match outcome {
                Ok(value) => break Ok(value),
                Err((error, retry_safe)) => {
                    if !db.retry_after($op, &error, retry_safe, &mut attempt).await {
                        break Err(error);
                    }
                }
            }
        }
    }};
}

/// Runs `$body` (as in [`write_tx!`]) on a pooled connection, outside a transaction, again
/// after a transient failure. For reads; each statement sees committed data.
macro_rules! read_conn {
    ($db:expr, $op:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::store::Db = $db;
        let mut attempt: u32 = 0;
        loop {
            let result: Result<_, $crate::store::StoreError> = async {
                let mut pooled = db.acquire().await?;
                let $conn: &mut sqlx::AnyConnection = &mut pooled;
                $body
            }
            .await;
            match result {
                Err(error) if db.retry_after($op, &error, true, &mut attempt).await => {}
                other => break other,
            }
        }
    }};
}

/// [`write_tx!`] for a write under a job's lease: `$body` runs (with `$job: LeasedJob`) only
/// when `$lease_id` is the job's current lease. Evaluates to `Result<Option<T>, StoreError>`:
/// `None` when the lease is stale, `NotFound` when the job does not exist.
macro_rules! lease_tx {
    ($db:expr, $op:expr, $job_id:expr, $lease_id:expr, |$conn:ident, $job:ident| $body:expr) => {{
        let db: &$crate::store::Db = $db;
        let backend = db.backend();
        write_tx!(db, $op, |lease_conn| {
            use $crate::store::jobs::LeaseCheck;
            match $crate::store::jobs::lock_leased_job(lease_conn, backend, $job_id, $lease_id)
                .await?
            {
                LeaseCheck::Missing => Err($crate::store::StoreError::NotFound {
                    entity: "job",
                    id: $job_id.to_string(),
                }),
                LeaseCheck::Stale => Ok(None),
                LeaseCheck::Current($job) => {
                    let $conn: &mut sqlx::AnyConnection = lease_conn;
                    let value: Result<_, $crate::store::StoreError> = async { $body }.await;
                    value.map(Some)
                }
            }
        })
    }};
}

mod agents;
mod api_queries;
mod column;
mod deliveries;
mod error;
mod events;
pub mod ids;
mod jobs;
mod logs;
mod outbox;
mod repositories;
mod runs;
mod schedules;
mod secrets;
mod tokens;

pub use agents::{Agent, AgentStatus, NewAgent};
pub use deliveries::{Delivery, DeliveryInsert, DeliveryOutcome, NewDelivery};
pub use error::{FinishError, LogAppendError, StoreError};
pub use events::{JobEvent, NewJobEvent, Step, StepStatus};
pub use ids::{
    AgentId, ApiTokenId, DeliveryId, JobId, LeaseId, RegistrationTokenId, RepositoryId, RunId,
    SecretId, StatusId,
};
pub use jobs::{
    CancelOutcome, CancelTarget, ClaimedJob, EventsAppended, ExpiredJob, FinalReport,
    FinishOutcome, Job, JobFinish, JobProgress, JobSource, JobStatus, LeaseState, NewJob,
    QueuedJob,
};
pub use logs::{LogAppended, LogState, TRUNCATION_MARKER};
pub use outbox::{NewStatus, OutboxStatus};
pub use repositories::{NewRepository, Repository, RepositoryUpdate};
pub use runs::{
    InvalidRunCursor, NewRun, NewRunWithJobs, Run, RunCursor, RunFilter, RunGraphUpdate,
    RunGraphUpdated, RunHead, RunPage, RunStatus, RunSummary,
};
pub use secrets::{SealedAt, SealedValue, Secret, SecretMeta};
pub use tokens::{ApiRole, ApiToken, RegistrationToken, generate_token, hash_token};

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, AssertSqlSafe, Connection, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names: `sqlite:` or `postgres:`/`postgresql:`.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "{:?} is neither sqlite://PATH nor postgres://...",
                redact_url(url)
            )))
        }
    }
}

/// Tunables of the store. [`StoreConfig::default`] is what `Db::connect` uses.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Pool size; `None`: 8 on SQLite (readers beside the single writer), 10 on PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a connection waits for another process's SQLite write lock.
    pub busy_timeout: Duration,
    /// How long an operation waits for a free connection before that counts as unavailable.
    pub acquire_timeout: Duration,
    /// How many times a transient failure is retried before [`StoreError::Unavailable`].
    pub max_retries: u32,
    /// Bytes of log kept per job; past it a single [`TRUNCATION_MARKER`] line is stored and
    /// further bytes are acknowledged and dropped.
    pub log_cap_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            max_connections: None,
            busy_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(10),
            max_retries: 6,
            log_cap_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The database. Cheap to clone (an `Arc`); share one per server.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the writers of this process take turns (see the module docs).
    writer: Option<tokio::sync::Mutex<()>>,
    config: StoreConfig,
    /// Agents by credential hash, as [`Db::authenticate_agent`] last read them.
    agents: agents::CredentialCache,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database at `url` with the default [`StoreConfig`] and applies the migrations
    /// that are not applied yet.
    ///
    /// - `sqlite://PATH` (relative to the working directory) or `sqlite:///ABSOLUTE/PATH`: the
    ///   file and its directory are created if missing; WAL journal, `synchronous=NORMAL`,
    ///   `foreign_keys=ON`, and a busy timeout set first on every connection.
    /// - `postgres://user:password@host:port/database` (any libpq-style URL sqlx accepts).
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        Db::connect_with(url, StoreConfig::default()).await
    }

    /// [`Db::connect`] with explicit tunables.
    pub async fn connect_with(url: &str, config: StoreConfig) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url)?;
                let mut attempt = 0;
                while let Err(error) = enable_wal(&url, &config).await {
                    if !error.is_transient() || attempt >= config.max_retries {
                        return Err(error);
                    }
                    backoff(attempt).await;
                    attempt += 1;
                }
                url
            }
            Backend::Postgres => url.to_owned(),
        };
        let busy_ms = config.busy_timeout.as_millis();
        let max_connections = config.max_connections.unwrap_or(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 10,
        });
        let options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(config.acquire_timeout)
            // A ping before each use costs SQLite a round trip to the connection's thread and
            // finds nothing: a local file does not go away under an open connection. A
            // PostgreSQL connection can (a restarted server): it is checked.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // The busy timeout comes first: the other pragmas may need a lock.
                        let busy = format!("PRAGMA busy_timeout = {busy_ms}");
                        conn.execute(AssertSqlSafe(busy)).await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA mmap_size = 268435456").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            });
        let mut attempt = 0;
        let pool = loop {
            match options
                .clone()
                .connect(&url)
                .await
                .map_err(StoreError::from)
            {
                Ok(pool) => break pool,
                Err(error) if error.is_transient() && attempt < config.max_retries => {
                    tracing::debug!(attempt, %error, "cannot connect to the database yet");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        tracing::debug!(?backend, "store connected and migrated");
        Ok(Db {
            inner: Arc::new(Inner {
                pool,
                backend,
                writer: (backend == Backend::Sqlite).then(|| tokio::sync::Mutex::new(())),
                config,
                agents: agents::CredentialCache::default(),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Checks that the database answers (the readiness probe); not retried.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.inner.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    /// Closes the pool: waits for the connections in use to come back, then closes them all.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// A pooled connection for reads ([`read_conn!`]).
    pub(crate) async fn acquire(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(self.inner.pool.acquire().await?)
    }

    /// Waits for this process's turn to write (SQLite only; `None` on PostgreSQL).
    pub(crate) async fn writer_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.inner.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    /// Opens a write transaction; on SQLite with `BEGIN IMMEDIATE`, which takes the write lock
    /// now (waiting up to the busy timeout) rather than at the first write.
    pub(crate) async fn begin_write<'c>(
        &self,
        conn: &'c mut PoolConnection<Any>,
    ) -> Result<Transaction<'c, Any>, StoreError> {
        let begin = match self.inner.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(Connection::begin_with(&mut **conn, begin).await?)
    }

    /// Ends a write transaction: commits after `Ok`, rolls back after `Err`. A failure comes
    /// with whether the transaction surely did not commit (so running it again is safe). The
    /// second value says whether the connection can be used again: not after a COMMIT or
    /// ROLLBACK that failed (SQLite rolls back by itself on a full disk, and the connection
    /// would still count the transaction as open: every later write on it would fail).
    pub(crate) async fn end_write<T>(
        &self,
        tx: Transaction<'_, Any>,
        result: Result<T, StoreError>,
    ) -> (Result<T, (StoreError, bool)>, bool) {
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                // Roll back now rather than when the connection is next used, so the write lock
                // is free before the next writer's turn.
                let sound = tx.rollback().await.is_ok();
                return (Err((error, true)), sound);
            }
        };
        match tx.commit().await {
            Ok(()) => (Ok(value), true),
            Err(error) => {
                let error = StoreError::from(error);
                // A failed COMMIT on SQLite did not commit. On PostgreSQL a lost connection
                // leaves it unknown, unless the server says it rolled back.
                let retry_safe = match self.inner.backend {
                    Backend::Sqlite => true,
                    Backend::Postgres => error.is_rolled_back_by_server(),
                };
                (Err((error, retry_safe)), false)
            }
        }
    }

    /// Whether to run an operation again after `error`: it is transient, running it again is
    /// safe, and retries are left. Waits the backoff before saying yes.
    pub(crate) async fn retry_after(
        &self,
        op: &'static str,
        error: &StoreError,
        retry_safe: bool,
        attempt: &mut u32,
    ) -> bool {
        if !error.is_transient() {
            return false;
        }
        if !retry_safe || *attempt >= self.inner.config.max_retries {
            tracing::warn!(op, attempt = *attempt, %error, "store operation failed");
            return false;
        }
        tracing::debug!(op, attempt = *attempt, %error, "transient store error, retrying");
        backoff(*attempt).await;
        *attempt += 1;
        true
    }
}

/// Waits before retry number `attempt` (0-based): 25 ms doubling up to 1 s, with jitter so
/// retrying writers do not collide again.
async fn backoff(attempt: u32) {
    let base = 25u64.saturating_mul(1 << attempt.min(6)).min(1000);
    let jitter = rand::random_range(0..=base / 2);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// The sqlx URL for a SQLite database: the file is created if missing (`mode=rwc`), and so is
/// its directory.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "SQLite needs a file (sqlite://PATH): an in-memory database is not shared between \
             connections"
                .into(),
        ));
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(match query {
        Some(query) if query.split('&').any(|pair| pair.starts_with("mode=")) => {
            format!("sqlite://{path}?{query}")
        }
        Some(query) => format!("sqlite://{path}?{query}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

/// Switches the database file to WAL (a property of the file, kept across connections). This
/// needs an exclusive lock, so it runs once, before the pool opens.
async fn enable_wal(url: &str, config: &StoreConfig) -> Result<(), StoreError> {
    let mut conn = AnyConnection::connect(url).await?;
    let busy = format!("PRAGMA busy_timeout = {}", config.busy_timeout.as_millis());
    conn.execute(AssertSqlSafe(busy)).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "SQLite refused the WAL journal (journal_mode is {mode})"
        )));
    }
    Ok(())
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/gantry.db");
        let url = format!("sqlite://{}", path.display());
        assert_eq!(sqlite_url(&url).expect("url"), format!("{url}?mode=rwc"));
        assert!(path.parent().expect("parent").is_dir());
        let ro = format!("sqlite://{}?mode=ro", path.display());
        assert_eq!(sqlite_url(&ro).expect("url"), ro);
        assert!(sqlite_url("sqlite::memory:").is_err());
    }

    #[test]
    fn backend_comes_from_the_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u:p@h/db").ok(),
            Some(Backend::Postgres)
        );
        let error = Backend::from_url("mysql://u:secret@h/db").expect_err("unsupported");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
