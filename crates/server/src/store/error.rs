//! The store's errors. [`StoreError`] says what an HTTP handler should answer; the operations
//! about a leased job have their own errors ([`LogAppendError`], [`FinishError`]) because their
//! refusals carry data the agent needs (the expected offset, the stored log size).

use sqlx::error::ErrorKind;

/// Why a store operation failed.
///
/// | variant | meaning | HTTP |
/// | --- | --- | --- |
/// | `NotFound` | the row does not exist | 404 |
/// | `Conflict` | a unique key is taken, or the row changed since it was read | 409 |
/// | `Gone` | the lease is not the job's current one (expired, finished, reassigned) | 410 |
/// | `Unavailable` | the database is unreachable or busy, still after the store's retries | 503 |
/// | `Backend`, `Corrupt`, `Migrate`, `Config` | a bug or a broken database | 500 |
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the lease is no longer current: {0}")]
    Gone(String),
    /// Transient: the same request may succeed later. Nothing was committed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Backend(#[source] sqlx::Error),
    /// A stored value cannot be read back (bad JSON, unknown status word, negative size).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database URL: {0}")]
    Config(String),
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// True when retrying the same operation may succeed (the database was busy or away).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// True for a PostgreSQL serialization failure or deadlock: the transaction was rolled back
    /// by the server, so running it again is safe even if the error came from `COMMIT`.
    pub(crate) fn is_rolled_back_by_server(&self) -> bool {
        match self {
            StoreError::Unavailable(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }
}

/// PostgreSQL error codes after which the same statement may succeed later.
fn is_transient_postgres_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || matches!(
            code,
            "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "53300" // too_many_connections
                | "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now
        )
}

/// SQLite (extended) result codes after which the same statement may succeed later: busy,
/// locked, I/O error, disk full.
fn is_transient_sqlite_code(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13)
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::Database(db) => {
                if matches!(db.kind(), ErrorKind::UniqueViolation) {
                    return StoreError::Conflict(db.message().to_owned());
                }
                let transient = match db.code() {
                    Some(code) => match code.parse::<i64>() {
                        Ok(sqlite_code) => is_transient_sqlite_code(sqlite_code),
                        Err(_) => is_transient_postgres_code(&code),
                    },
                    None => false,
                };
                if transient {
                    StoreError::Unavailable(error)
                } else {
                    StoreError::Backend(error)
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            _ => StoreError::Backend(error),
        }
    }
}

/// Why a log chunk was not appended ([`Db::append_log_chunk`](super::Db::append_log_chunk)).
#[derive(Debug, thiserror::Error)]
pub enum LogAppendError {
    /// The chunk starts after the end of the stored log: the agent must send from `expected`
    /// (HTTP 409 `{expected_offset}`).
    #[error("the log chunk leaves a gap: the next expected offset is {expected}")]
    Gap { expected: u64 },
    /// The chunk covers bytes already stored but says something else from `offset` on (409).
    #[error("the log chunk differs from the stored log at offset {offset}")]
    Conflict { offset: u64 },
    /// The lease is not the job's current one (410).
    #[error("the lease is no longer current")]
    StaleLease,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a job's finish was not recorded ([`Db::finish_job`](super::Db::finish_job)).
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The agent says the log has `reported` bytes, the store has `stored`: the agent sends the
    /// missing bytes from `stored` on, then finishes again (HTTP 409).
    #[error("the job's log has {stored} bytes stored, the agent reported {reported}")]
    LogSizeMismatch { stored: u64, reported: u64 },
    /// The log tail sent with the result differs from the stored log at `offset` (HTTP 409):
    /// nothing was recorded.
    #[error("the log sent with the result differs from the stored log at offset {offset}")]
    LogConflict { offset: u64 },
    /// The lease is not the job's current one (410).
    #[error("the lease is no longer current")]
    StaleLease,
    #[error(transparent)]
    Store(#[from] StoreError),
}
