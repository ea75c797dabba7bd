//! `job_events` and `steps`: what the agent reports about a job besides its log. Events
//! (annotations, groups, summaries, step starts and ends) are stored by sequence number, once
//! each; steps are upserted by number as the agent reports them.

use super::column::{RowExt, size};
use super::{Db, JobId, LeaseId, StoreError};
use crate::store::jobs::EventsAppended;
use gantry_protocol::Conclusion;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// An event to store, numbered by the agent from 0 without gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJobEvent {
    pub seq: u64,
    /// The event, JSON.
    pub event: String,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    pub job_id: JobId,
    pub seq: u64,
    pub event: String,
    pub received_ms: i64,
}

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Completed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Completed => "completed",
        }
    }

    fn parse(text: &str) -> Result<StepStatus, StoreError> {
        match text {
            "pending" => Ok(StepStatus::Pending),
            "running" => Ok(StepStatus::Running),
            "completed" => Ok(StepStatus::Completed),
            other => Err(StoreError::corrupt("step status", other)),
        }
    }
}

/// A job's step as its agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based position in the job.
    pub number: u32,
    pub name: String,
    pub status: StepStatus,
    /// The result before `continue-on-error` (`steps.<id>.outcome`).
    pub outcome: Option<Conclusion>,
    /// The result after `continue-on-error` (`steps.<id>.conclusion`).
    pub conclusion: Option<Conclusion>,
    /// The step's first log byte (agent offsets).
    pub log_start: Option<u64>,
    /// One past the step's last log byte.
    pub log_end: Option<u64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

/// Stores `events` (skipping numbers stored already) and upserts `steps`, a few statements
/// for any number of them. The caller holds the job's lease in the transaction of `conn`.
pub(crate) async fn store_events(
    conn: &mut AnyConnection,
    job_id: &JobId,
    events: &[NewJobEvent],
    steps: &[Step],
    now_ms: i64,
) -> Result<(), StoreError> {
    for rows in events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO job_events (job_id, seq, event, received_ms) VALUES {} \
             ON CONFLICT (job_id, seq) DO NOTHING",
            placeholders(rows.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in rows {
            query = query
                .bind(job_id.as_str())
                .bind(size(event.seq))
                .bind(event.event.as_str())
                .bind(now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    // One row per step number (PostgreSQL refuses to upsert a row twice in one statement).
    let mut merged: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        match merged.iter_mut().find(|s| s.number == step.number) {
            Some(earlier) => *earlier = merge_step(earlier, step),
            None => merged.push(step.clone()),
        }
    }
    for rows in merged.chunks(ROWS_PER_STATEMENT) {
        upsert_steps(conn, job_id, rows).await?;
    }
    Ok(())
}

/// Rows per multi-row statement: far below SQLite's and PostgreSQL's limits on parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, $2, ..), ($n+1, ..)` for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(row * columns + column + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Two reports of one step as one, by the rules of [`Db::upsert_step`].
fn merge_step(earlier: &Step, later: &Step) -> Step {
    Step {
        number: later.number,
        name: later.name.clone(),
        status: later.status,
        outcome: later.outcome.or(earlier.outcome),
        conclusion: later.conclusion.or(earlier.conclusion),
        log_start: earlier.log_start.or(later.log_start),
        log_end: later.log_end.or(earlier.log_end),
        started_ms: earlier.started_ms.or(later.started_ms),
        finished_ms: later.finished_ms.or(earlier.finished_ms),
    }
}

/// The next `seq` the job's events expect: one past the highest stored.
pub(crate) async fn next_event_seq(
    conn: &mut AnyConnection,
    job_id: &JobId,
) -> Result<u64, StoreError> {
    let next: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM job_events WHERE job_id = $1")
            .bind(job_id.as_str())
            .fetch_one(&mut *conn)
            .await?;
    u64::try_from(next).map_err(|_| StoreError::corrupt("event seq", next))
}

/// Upserts steps with distinct numbers: a later report of a step (its end) leaves what an
/// earlier one said (its start) in place where it leaves fields out.
async fn upsert_steps(
    conn: &mut AnyConnection,
    job_id: &JobId,
    steps: &[Step],
) -> Result<(), StoreError> {
    if steps.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO steps (job_id, number, name, status, outcome, conclusion, \
         log_start, log_end, started_ms, finished_ms) VALUES {} \
         ON CONFLICT (job_id, number) DO UPDATE SET name = excluded.name, \
         status = excluded.status, \
         outcome = COALESCE(excluded.outcome, steps.outcome), \
         conclusion = COALESCE(excluded.conclusion, steps.conclusion), \
         log_start = COALESCE(steps.log_start, excluded.log_start), \
         log_end = COALESCE(excluded.log_end, steps.log_end), \
         started_ms = COALESCE(steps.started_ms, excluded.started_ms), \
         finished_ms = COALESCE(excluded.finished_ms, steps.finished_ms)",
        placeholders(steps.len(), 10)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for step in steps {
        query = query
            .bind(job_id.as_str())
            .bind(i64::from(step.number))
            .bind(step.name.as_str())
            .bind(step.status.as_str())
            .bind(step.outcome.map(Conclusion::as_str))
            .bind(step.conclusion.map(Conclusion::as_str))
            .bind(step.log_start.map(size))
            .bind(step.log_end.map(size))
            .bind(step.started_ms)
            .bind(step.finished_ms);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

fn decode_step(row: &AnyRow) -> Result<Step, StoreError> {
    let number = row.int("number")?;
    let offset = |column: &'static str| -> Result<Option<u64>, StoreError> {
        row.opt_int(column)?
            .map(|value| u64::try_from(value).map_err(|_| StoreError::corrupt(column, value)))
            .transpose()
    };
    Ok(Step {
        number: u32::try_from(number).map_err(|_| StoreError::corrupt("step number", number))?,
        name: row.text("name")?,
        status: StepStatus::parse(&row.text("status")?)?,
        outcome: row.opt_conclusion("outcome")?,
        conclusion: row.opt_conclusion("conclusion")?,
        log_start: offset("log_start")?,
        log_end: offset("log_end")?,
        started_ms: row.opt_int("started_ms")?,
        finished_ms: row.opt_int("finished_ms")?,
    })
}

impl Db {
    /// Stores the agent's events under its lease. Idempotent by `seq`: an event whose number is
    /// stored already is skipped (the first one stays), so a batch can be sent again after a
    /// lost answer. Answers the next sequence number (one past the highest stored) and the
    /// job's cancel flag. `Gone` when the lease is not current.
    pub async fn insert_job_events(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        events: &[NewJobEvent],
        now_ms: i64,
    ) -> Result<EventsAppended, StoreError> {
        self.record_job_events(job_id, lease_id, events, &[], now_ms)
            .await
    }

    /// [`Db::insert_job_events`] and [`Db::upsert_step`] for each of `steps`, in one
    /// transaction: what one events request of an agent reports.
    pub async fn record_job_events(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        events: &[NewJobEvent],
        steps: &[Step],
        now_ms: i64,
    ) -> Result<EventsAppended, StoreError> {
        let outcome = lease_tx!(self, "insert_job_events", job_id, lease_id, |conn, job| {
            store_events(conn, job_id, events, steps, now_ms).await?;
            let next_seq = next_event_seq(conn, job_id).await?;
            Ok(EventsAppended {
                next_seq,
                cancel_requested: job.cancel_requested,
            })
        })?;
        outcome.ok_or_else(|| {
            StoreError::Gone(format!("job {job_id} is not running under this lease"))
        })
    }

    /// A job's events with `seq >= from_seq`, in order, at most `limit`.
    pub async fn list_job_events(
        &self,
        job_id: &JobId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<JobEvent>, StoreError> {
        read_conn!(self, "list_job_events", |conn| {
            let rows = sqlx::query(
                "SELECT seq, event, received_ms FROM job_events WHERE job_id = $1 AND seq >= $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(job_id.as_str())
            .bind(size(from_seq))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(JobEvent {
                        job_id: job_id.clone(),
                        seq: row.unsigned("seq")?,
                        event: row.text("event")?,
                        received_ms: row.int("received_ms")?,
                    })
                })
                .collect()
        })
    }

    /// Stores a step as the agent reports it, merged with what was stored for its number: the
    /// name and status are replaced; the first `log_start` and `started_ms` stay; `outcome`,
    /// `conclusion`, `log_end` and `finished_ms` are replaced unless the new report leaves them
    /// out (`None`). So a step's end, reported without its start, keeps the start. `Gone` when
    /// the lease is not current.
    pub async fn upsert_step(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        step: &Step,
    ) -> Result<(), StoreError> {
        let outcome = lease_tx!(self, "upsert_step", job_id, lease_id, |conn, _job| {
            upsert_steps(conn, job_id, std::slice::from_ref(step)).await
        })?;
        outcome.ok_or_else(|| {
            StoreError::Gone(format!("job {job_id} is not running under this lease"))
        })
    }

    /// A job's steps in order.
    pub async fn list_steps(&self, job_id: &JobId) -> Result<Vec<Step>, StoreError> {
        read_conn!(self, "list_steps", |conn| {
            let rows = sqlx::query(
                "SELECT number, name, status, outcome, conclusion, log_start, log_end, \
                 started_ms, finished_ms FROM steps WHERE job_id = $1 ORDER BY number",
            )
            .bind(job_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode_step).collect()
        })
    }
}
