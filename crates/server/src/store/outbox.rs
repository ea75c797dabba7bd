//! `status_outbox`: commit statuses to send to the forge, in order. A status is written in the
//! same transaction as the state change it reports (a run created, a run graph step), so none
//! is lost; the sender (forge/status.rs) sends them in order and marks each sent, or failed
//! with a time to retry, or abandoned.

use super::column::{RowExt, flag};
use super::{Db, RepositoryId, RunId, StatusId, StoreError};
use crate::forge::status::CommitState;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// A status to send about a run's commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStatus {
    pub state: CommitState,
    /// The check's name (`gantry/ci.yml/test`).
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

/// A status in the outbox, with what the sender needs to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxStatus {
    pub id: StatusId,
    pub run_id: RunId,
    /// Order within the run: send a run's statuses in this order.
    pub seq: i64,
    pub repository_id: RepositoryId,
    pub sha: String,
    pub state: CommitState,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub created_ms: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_ms: i64,
}

fn state_str(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "pending",
        CommitState::Running => "running",
        CommitState::Success => "success",
        CommitState::Failure => "failure",
        CommitState::Error => "error",
        CommitState::Canceled => "canceled",
    }
}

fn parse_state(text: &str) -> Result<CommitState, StoreError> {
    Ok(match text {
        "pending" => CommitState::Pending,
        "running" => CommitState::Running,
        "success" => CommitState::Success,
        "failure" => CommitState::Failure,
        "error" => CommitState::Error,
        "canceled" => CommitState::Canceled,
        other => return Err(StoreError::corrupt("commit state", other)),
    })
}

fn decode(row: &AnyRow) -> Result<OutboxStatus, StoreError> {
    Ok(OutboxStatus {
        id: StatusId::from(row.text("id")?),
        run_id: RunId::from(row.text("run_id")?),
        seq: row.int("seq")?,
        repository_id: RepositoryId::from(row.text("repository_id")?),
        sha: row.text("sha")?,
        state: parse_state(&row.text("state")?)?,
        context: row.text("context")?,
        description: row.opt_text("description")?,
        target_url: row.opt_text("target_url")?,
        created_ms: row.int("created_ms")?,
        attempts: row.int("attempts")?,
        last_error: row.opt_text("last_error")?,
        next_attempt_ms: row.int("next_attempt_ms")?,
    })
}

/// Inserts a status of `run_id` after the run's last one (inside the caller's transaction; the
/// caller holds the run: it just inserted it, or locked it).
pub(crate) async fn insert_status_row(
    conn: &mut AnyConnection,
    run_id: &RunId,
    status: &NewStatus,
    now_ms: i64,
) -> Result<StatusId, StoreError> {
    let id = StatusId::generate();
    sqlx::query(
        "INSERT INTO status_outbox (id, run_id, seq, state, context, description, target_url, \
         created_ms, next_attempt_ms) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM status_outbox WHERE run_id = $2), \
         $3, $4, $5, $6, $7, $7)",
    )
    .bind(id.as_str())
    .bind(run_id.as_str())
    .bind(state_str(status.state))
    .bind(status.context.as_str())
    .bind(status.description.as_deref())
    .bind(status.target_url.as_deref())
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

impl Db {
    /// Adds a status to send about a run, after the run's earlier ones. `NotFound` for an
    /// unknown run.
    pub async fn insert_status(
        &self,
        run_id: &RunId,
        status: &NewStatus,
        now_ms: i64,
    ) -> Result<StatusId, StoreError> {
        let backend = self.backend();
        write_tx!(self, "insert_status", |conn| {
            super::runs::lock_run(conn, backend, run_id).await?;
            insert_status_row(conn, run_id, status, now_ms).await
        })
    }

    /// Statuses to send now (not sent, not abandoned, retry time passed), in the order they
    /// were written: by creation, then run, then the run's sequence.
    pub async fn list_unsent_statuses(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>, StoreError> {
        read_conn!(self, "list_unsent_statuses", |conn| {
            let rows = sqlx::query(
                "SELECT s.id, s.run_id, s.seq, r.repository_id, r.sha, s.state, s.context, \
                 s.description, s.target_url, s.created_ms, s.attempts, s.last_error, \
                 s.next_attempt_ms FROM status_outbox s JOIN runs r ON r.id = s.run_id \
                 WHERE s.sent_ms IS NULL AND s.abandoned = 0 AND s.next_attempt_ms <= $1 \
                 ORDER BY s.created_ms, s.run_id, s.seq LIMIT $2",
            )
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// The statuses of a run in order, sent or not (for the run's page).
    pub async fn list_statuses(&self, run_id: &RunId) -> Result<Vec<OutboxStatus>, StoreError> {
        read_conn!(self, "list_statuses", |conn| {
            let rows = sqlx::query(
                "SELECT s.id, s.run_id, s.seq, r.repository_id, r.sha, s.state, s.context, \
                 s.description, s.target_url, s.created_ms, s.attempts, s.last_error, \
                 s.next_attempt_ms FROM status_outbox s JOIN runs r ON r.id = s.run_id \
                 WHERE s.run_id = $1 ORDER BY s.seq",
            )
            .bind(run_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// The forge accepted the status. `NotFound` for an unknown id.
    pub async fn mark_status_sent(&self, id: &StatusId, now_ms: i64) -> Result<(), StoreError> {
        write_tx!(self, "mark_status_sent", |conn| {
            let done = sqlx::query(
                "UPDATE status_outbox SET sent_ms = $2, attempts = attempts + 1 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("status", id));
            }
            Ok(())
        })
    }

    /// Sending failed: counts the attempt and keeps the error. With `retry_at_ms` the status is
    /// offered again from then on; with `None` it is abandoned (never offered again, kept for
    /// the operator). `NotFound` for an unknown id.
    pub async fn mark_status_attempt_failed(
        &self,
        id: &StatusId,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        write_tx!(self, "mark_status_attempt_failed", |conn| {
            let done = sqlx::query(
                "UPDATE status_outbox SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_ms = COALESCE($3, next_attempt_ms), abandoned = $4 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(error)
            .bind(retry_at_ms)
            .bind(flag(retry_at_ms.is_none()))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("status", id));
            }
            Ok(())
        })
    }
}
