//! `jobs`: one attempt of one leg of one job of a run, and its life with an agent: queued,
//! claimed under a lease, renewed by heartbeats, finished (or expired when the agent goes
//! silent), cancelled, retried.
//!
//! The lease protocol: [`Db::claim_job`] gives the agent a fresh random [`LeaseId`]; every later
//! write about the job ([`Db::renew_lease`], [`Db::append_log_chunk`],
//! [`Db::insert_job_events`], [`Db::upsert_step`], [`Db::finish_job`]) carries it and is refused
//! with `Gone`/`StaleLease` when it is not the job's current lease: the job finished, its lease
//! expired ([`Db::expire_leases`] clears it), or it was given to someone else.

use super::column::{RowExt, conclusion_str, flag, from_json, reason_json, size, to_json};
use super::events::{NewJobEvent, Step, store_events};
use super::logs::{LogSizes, store_chunk, store_log_sizes};
use super::{
    AgentId, Backend, Db, FinishError, JobId, LeaseId, LogAppendError, RepositoryId, RunId,
    StoreError,
};
use gantry_protocol::{Conclusion, FailureReason};
use indexmap::IndexMap;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::collections::HashSet;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Stored but not to be run yet (held by the scheduler: max-parallel, an approval...).
    Waiting,
    /// Waiting for an agent with its labels.
    Queued,
    /// Leased to an agent.
    Running,
    /// Ended; see `conclusion` and `reason`.
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<JobStatus, StoreError> {
        match text {
            "waiting" => Ok(JobStatus::Waiting),
            "queued" => Ok(JobStatus::Queued),
            "running" => Ok(JobStatus::Running),
            "completed" => Ok(JobStatus::Completed),
            other => Err(StoreError::corrupt("job status", other)),
        }
    }
}

/// A stored job (one attempt of one leg). The lease id is deliberately not part of it: only the
/// agent that claimed the job knows it ([`ClaimedJob`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub run_id: RunId,
    /// The job's key in its run graph (`build`, `call/test`).
    pub key: String,
    /// The leg's index in its job (0 without matrix).
    pub leg: u32,
    /// 1 for the first attempt; a retry after a lost agent is the next attempt of the same leg.
    pub attempt: u32,
    pub name: String,
    /// The `JobSpec`, JSON.
    pub spec: String,
    /// The `SecretScope`, JSON: which secrets the job may receive.
    pub secret_scope: String,
    /// Labels an agent must all have (compared without case) to take the job.
    pub labels: Vec<String>,
    pub status: JobStatus,
    pub conclusion: Option<Conclusion>,
    pub reason: Option<FailureReason>,
    pub outputs: Option<IndexMap<String, String>>,
    pub agent_id: Option<AgentId>,
    pub lease_expires_ms: Option<i64>,
    /// A cancel was asked for; the agent learns it from its next heartbeat, log or event write.
    pub cancel_requested: bool,
    /// At most one job of a concurrency group runs at a time.
    pub concurrency_group: Option<String>,
    /// `timeout-minutes` in ms, for [`Db::list_timed_out_jobs`].
    pub timeout_ms: Option<i64>,
    pub queued_ms: Option<i64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Log bytes received from the agent: the offset its next chunk must start at.
    pub log_size: u64,
    /// Log bytes stored (what [`Db::read_log`] serves); differs from `log_size` once truncated.
    pub log_stored: u64,
    /// The log reached the cap: the stored log ends with the truncation marker.
    pub log_truncated: bool,
    /// The run graph has taken this job's result in (see [`Db::list_unapplied_jobs`]).
    pub graph_applied: bool,
    pub created_ms: i64,
}

/// A job to insert with its run or a run graph update.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub key: String,
    pub leg: u32,
    pub attempt: u32,
    pub name: String,
    pub spec: String,
    pub secret_scope: String,
    pub labels: Vec<String>,
    /// `Queued` (claimable now) or `Waiting` (held; queue it later with
    /// [`RunGraphUpdate::queue_jobs`](super::RunGraphUpdate::queue_jobs)).
    pub status: JobStatus,
    pub concurrency_group: Option<String>,
    pub timeout_ms: Option<i64>,
}

/// A job given to an agent by [`Db::claim_job`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedJob {
    pub job: Job,
    /// The lease; the agent sends it with every request about the job.
    pub lease_id: LeaseId,
    pub lease_expires_ms: i64,
    pub source: JobSource,
}

/// What the agent checks out for a claimed job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSource {
    pub repository_id: RepositoryId,
    pub repository_name: String,
    pub clone_url: String,
    pub sha: String,
    pub git_ref: String,
    /// False for runs of fork pull requests: no secrets.
    pub trusted: bool,
    /// The run's number and attempt (`github.run_number`, `github.run_attempt`).
    pub run_number: i64,
    pub run_attempt: i64,
}

/// The lease after a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseState {
    pub expires_ms: i64,
    pub cancel_requested: bool,
}

/// What the agent reports at the end of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobFinish {
    pub conclusion: Conclusion,
    pub reason: Option<FailureReason>,
    pub outputs: IndexMap<String, String>,
    /// The log bytes the agent sent in all; must equal the store's `log_size`.
    pub log_size: u64,
}

/// What [`Db::finish_job`] did; both carry the job as stored.
#[derive(Clone, Debug, PartialEq)]
pub enum FinishOutcome {
    /// Stored now; the scheduler advances the run graph with it.
    Recorded(Job),
    /// This lease's finish was stored before (a repeat after a lost answer); nothing changed.
    AlreadyRecorded(Job),
}

impl FinishOutcome {
    pub fn job(&self) -> &Job {
        match self {
            FinishOutcome::Recorded(job) | FinishOutcome::AlreadyRecorded(job) => job,
        }
    }
}

/// A running job whose lease ran out (or whose agent was revoked), now completed as `failure`
/// with reason `agent_lost`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredJob {
    pub job_id: JobId,
    pub run_id: RunId,
    pub key: String,
    pub leg: u32,
    pub attempt: u32,
    pub agent_id: Option<AgentId>,
    /// A cancel had been asked for: the job completed as `cancelled`, and it is not retried.
    pub cancelled: bool,
}

impl ExpiredJob {
    /// Whether the job gets another attempt on another agent: not when it was being
    /// cancelled, and at most `retries` times.
    pub fn retryable(&self, retries: u32) -> bool {
        !self.cancelled && self.attempt <= retries
    }
}

/// What to cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelTarget {
    Job(JobId),
    /// Every job of the run; the run is flagged `cancel_requested` for the scheduler.
    Run(RunId),
}

/// What [`Db::request_cancel`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Waiting or queued jobs, now completed as `cancelled` (no agent had them).
    pub completed: Vec<JobId>,
    /// Running jobs, now flagged: their agents stop them and finish them as cancelled.
    pub signalled: Vec<JobId>,
}

/// What a queued job waits for ([`Db::list_queued_jobs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJob {
    pub job_id: JobId,
    pub run_id: RunId,
    pub repository_id: RepositoryId,
    pub name: String,
    pub labels: Vec<String>,
    pub concurrency_group: Option<String>,
    pub queued_ms: i64,
    /// A running job of the same concurrency group, which this one waits for.
    pub blocked_by: Option<JobId>,
}

/// Answer to [`Db::insert_job_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventsAppended {
    /// One past the highest stored sequence number.
    pub next_seq: u64,
    pub cancel_requested: bool,
}

/// Where a job stands, for the scheduler: a [`Job`] without its spec, labels and log figures
/// (a spec holds the whole event payload; a run's graph step reads all its jobs).
#[derive(Clone, Debug, PartialEq)]
pub struct JobProgress {
    pub id: JobId,
    pub key: String,
    pub leg: u32,
    pub attempt: u32,
    pub status: JobStatus,
    pub conclusion: Option<Conclusion>,
    pub outputs: Option<IndexMap<String, String>>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub graph_applied: bool,
}

const PROGRESS_COLUMNS: &str =
    "id, key, leg, attempt, status, conclusion, outputs, started_ms, finished_ms, graph_applied";

fn decode_progress(row: &AnyRow) -> Result<JobProgress, StoreError> {
    Ok(JobProgress {
        id: JobId::from(row.text("id")?),
        key: row.text("key")?,
        leg: small(row, "leg")?,
        attempt: small(row, "attempt")?,
        status: JobStatus::parse(&row.text("status")?)?,
        conclusion: row.opt_conclusion("conclusion")?,
        outputs: row
            .opt_text("outputs")?
            .map(|text| from_json("job outputs", &text))
            .transpose()?,
        started_ms: row.opt_int("started_ms")?,
        finished_ms: row.opt_int("finished_ms")?,
        graph_applied: row.flag("graph_applied")?,
    })
}

/// The queue position of a job queued now: after every job queued before.
pub(crate) const NEXT_QUEUE_SEQ: &str = "(SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM jobs)";

pub(crate) const COLUMNS: &str = "id, run_id, key, leg, attempt, name, spec, secret_scope, labels, \
     status, conclusion, reason, outputs, agent_id, lease_expires_ms, cancel_requested, \
     concurrency_group, timeout_ms, queued_ms, started_ms, finished_ms, log_size, log_stored, \
     log_truncated, graph_applied, created_ms";

fn small(row: &AnyRow, column: &'static str) -> Result<u32, StoreError> {
    let value = row.int(column)?;
    u32::try_from(value).map_err(|_| StoreError::corrupt(column, value))
}

pub(crate) fn decode(row: &AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: JobId::from(row.text("id")?),
        run_id: RunId::from(row.text("run_id")?),
        key: row.text("key")?,
        leg: small(row, "leg")?,
        attempt: small(row, "attempt")?,
        name: row.text("name")?,
        spec: row.text("spec")?,
        secret_scope: row.text("secret_scope")?,
        labels: from_json("job labels", &row.text("labels")?)?,
        status: JobStatus::parse(&row.text("status")?)?,
        conclusion: row.opt_conclusion("conclusion")?,
        reason: row
            .opt_text("reason")?
            .map(|text| from_json("failure reason", &text))
            .transpose()?,
        outputs: row
            .opt_text("outputs")?
            .map(|text| from_json("job outputs", &text))
            .transpose()?,
        agent_id: row.opt_text("agent_id")?.map(AgentId::from),
        lease_expires_ms: row.opt_int("lease_expires_ms")?,
        cancel_requested: row.flag("cancel_requested")?,
        concurrency_group: row.opt_text("concurrency_group")?,
        timeout_ms: row.opt_int("timeout_ms")?,
        queued_ms: row.opt_int("queued_ms")?,
        started_ms: row.opt_int("started_ms")?,
        finished_ms: row.opt_int("finished_ms")?,
        log_size: row.unsigned("log_size")?,
        log_stored: row.unsigned("log_stored")?,
        log_truncated: row.flag("log_truncated")?,
        graph_applied: row.flag("graph_applied")?,
        created_ms: row.int("created_ms")?,
    })
}

pub(crate) fn decode_expired(row: &AnyRow) -> Result<ExpiredJob, StoreError> {
    Ok(ExpiredJob {
        job_id: JobId::from(row.text("id")?),
        run_id: RunId::from(row.text("run_id")?),
        key: row.text("key")?,
        leg: small(row, "leg")?,
        attempt: small(row, "attempt")?,
        agent_id: row.opt_text("agent_id")?.map(AgentId::from),
        cancelled: row.text("conclusion")? == "cancelled",
    })
}

/// Which running jobs lost their agent.
pub(crate) enum LostAgent<'a> {
    /// Those whose lease expired before this time (ms).
    LeaseExpiredBefore(i64),
    /// Every running job of this (revoked) agent.
    Revoked(&'a AgentId),
}

/// Ends running jobs whose agent is gone (inside the caller's transaction): `failure` with
/// reason `agent_lost`, or `cancelled` when a cancel had been asked for (the user, a
/// concurrency group or the timeout wanted it stopped: nothing to retry). Their leases are
/// cleared, so later writes of that agent are refused.
pub(crate) async fn end_lost_jobs(
    conn: &mut AnyConnection,
    lost: LostAgent<'_>,
    now_ms: i64,
) -> Result<Vec<ExpiredJob>, StoreError> {
    let cancelled = reason_json(&FailureReason::Cancelled)?;
    let agent_lost = reason_json(&FailureReason::AgentLost)?;
    let condition = match lost {
        LostAgent::LeaseExpiredBefore(_) => "lease_expires_ms < $4",
        LostAgent::Revoked(_) => "agent_id = $4",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = 'completed', \
         conclusion = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'failure' END, \
         reason = CASE WHEN cancel_requested = 1 THEN $2 ELSE $3 END, \
         finished_ms = $1, lease_id = NULL \
         WHERE status = 'running' AND {condition} \
         RETURNING id, run_id, key, leg, attempt, agent_id, conclusion"
    ));
    let query = sqlx::query(sql)
        .bind(now_ms)
        .bind(cancelled)
        .bind(agent_lost);
    let query = match lost {
        LostAgent::LeaseExpiredBefore(before) => query.bind(before),
        LostAgent::Revoked(agent) => query.bind(agent.as_str().to_owned()),
    };
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(decode_expired).collect()
}

/// Inserts one job row of `run_id` (inside the caller's transaction).
pub(crate) async fn insert_job_row(
    conn: &mut AnyConnection,
    run_id: &RunId,
    new: &NewJob,
    now_ms: i64,
) -> Result<Job, StoreError> {
    if matches!(new.status, JobStatus::Running | JobStatus::Completed) {
        return Err(StoreError::Conflict(format!(
            "a new job starts waiting or queued, not {}",
            new.status.as_str()
        )));
    }
    let id = JobId::generate();
    let labels = to_json("job labels", &new.labels)?;
    let queued = new.status == JobStatus::Queued;
    let queued_ms = queued.then_some(now_ms);
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (id, run_id, key, leg, attempt, name, spec, secret_scope, labels, \
         status, concurrency_group, timeout_ms, queued_ms, queue_seq, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         CASE WHEN $15 = 1 THEN {NEXT_QUEUE_SEQ} ELSE 0 END, $14) RETURNING {COLUMNS}"
    ));
    let row = sqlx::query(sql)
        .bind(id.as_str())
        .bind(run_id.as_str())
        .bind(new.key.as_str())
        .bind(i64::from(new.leg))
        .bind(i64::from(new.attempt))
        .bind(new.name.as_str())
        .bind(new.spec.as_str())
        .bind(new.secret_scope.as_str())
        .bind(labels)
        .bind(new.status.as_str())
        .bind(new.concurrency_group.as_deref())
        .bind(new.timeout_ms)
        .bind(queued_ms)
        .bind(now_ms)
        .bind(i64::from(queued))
        .fetch_one(&mut *conn)
        .await?;
    decode(&row)
}

/// The lease-related state of a job, read (and on PostgreSQL row-locked) inside a write.
/// What an agent sends along with a job's result ([`Db::finish_job_with`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalReport {
    /// Log bytes not sent before, at their offset.
    pub log_tail: Option<(u64, Vec<u8>)>,
    /// Events not sent before.
    pub events: Vec<NewJobEvent>,
    /// The steps those events start or end.
    pub steps: Vec<Step>,
}

pub(crate) struct LeasedJob {
    pub cancel_requested: bool,
    pub log_size: u64,
    pub log_stored: u64,
    pub log_truncated: bool,
}

pub(crate) enum LeaseCheck {
    /// The job is running under this lease.
    Current(LeasedJob),
    /// The job exists but this is not its current lease.
    Stale,
    Missing,
}

/// Reads the job and checks `lease_id` is its current lease; on PostgreSQL the row stays
/// locked until the transaction ends, so concurrent writes under the lease take turns.
pub(crate) async fn lock_leased_job(
    conn: &mut AnyConnection,
    backend: Backend,
    job_id: &JobId,
    lease_id: &LeaseId,
) -> Result<LeaseCheck, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT status, lease_id, cancel_requested, log_size, log_stored, log_truncated \
             FROM jobs WHERE id = $1"
        }
        Backend::Postgres => {
            "SELECT status, lease_id, cancel_requested, log_size, log_stored, log_truncated \
             FROM jobs WHERE id = $1 FOR UPDATE"
        }
    };
    let Some(row) = sqlx::query(sql)
        .bind(job_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(LeaseCheck::Missing);
    };
    let running = JobStatus::parse(&row.text("status")?)? == JobStatus::Running;
    let current = row.opt_text("lease_id")?.as_deref() == Some(lease_id.as_str());
    if !(running && current) {
        return Ok(LeaseCheck::Stale);
    }
    Ok(LeaseCheck::Current(LeasedJob {
        cancel_requested: row.flag("cancel_requested")?,
        log_size: row.unsigned("log_size")?,
        log_stored: row.unsigned("log_stored")?,
        log_truncated: row.flag("log_truncated")?,
    }))
}

/// Cancels the job `key` or every job of the run `key`: waiting/queued ones complete as
/// cancelled, running ones are flagged.
async fn cancel_jobs_where(
    conn: &mut AnyConnection,
    condition: CancelCondition,
    key: &str,
    now_ms: i64,
) -> Result<CancelOutcome, StoreError> {
    let (complete_sql, signal_sql) = match condition {
        CancelCondition::Job => (
            "UPDATE jobs SET status = 'completed', conclusion = 'cancelled', reason = $2, \
             finished_ms = $3 WHERE id = $1 AND status IN ('waiting', 'queued') RETURNING id",
            "UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND status = 'running' \
             RETURNING id",
        ),
        CancelCondition::Run => (
            "UPDATE jobs SET status = 'completed', conclusion = 'cancelled', reason = $2, \
             finished_ms = $3 WHERE run_id = $1 AND status IN ('waiting', 'queued') RETURNING id",
            "UPDATE jobs SET cancel_requested = 1 WHERE run_id = $1 AND status = 'running' \
             RETURNING id",
        ),
    };
    let reason = reason_json(&FailureReason::Cancelled)?;
    let completed: Vec<String> = sqlx::query_scalar(complete_sql)
        .bind(key)
        .bind(reason)
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await?;
    let signalled: Vec<String> = sqlx::query_scalar(signal_sql)
        .bind(key)
        .fetch_all(&mut *conn)
        .await?;
    Ok(CancelOutcome {
        completed: completed.into_iter().map(JobId::from).collect(),
        signalled: signalled.into_iter().map(JobId::from).collect(),
    })
}

#[derive(Clone, Copy)]
enum CancelCondition {
    Job,
    Run,
}

/// Cancels one job of `run_id` (used by the run graph update); a job of another run is left
/// alone.
pub(crate) async fn cancel_job_of_run(
    conn: &mut AnyConnection,
    run_id: &RunId,
    job_id: &JobId,
    now_ms: i64,
) -> Result<CancelOutcome, StoreError> {
    let belongs: Option<String> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1 AND run_id = $2")
            .bind(job_id.as_str())
            .bind(run_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if belongs.is_none() {
        return Err(StoreError::not_found("job of this run", job_id));
    }
    cancel_jobs_where(conn, CancelCondition::Job, job_id.as_str(), now_ms).await
}

/// Whether every label the job needs is among the agent's (without case).
fn labels_match(needed: &[String], offered: &HashSet<String>) -> bool {
    needed
        .iter()
        .all(|label| offered.contains(&label.to_lowercase()))
}

/// Result of the inside of a lease write, before it leaves the transaction.
enum Leased<T> {
    Done(T),
    Stale,
}

impl Db {
    pub async fn find_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        read_conn!(self, "find_job", |conn| {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    pub async fn get_job(&self, id: &JobId) -> Result<Job, StoreError> {
        self.find_job(id)
            .await?
            .ok_or_else(|| StoreError::not_found("job", id))
    }

    /// Every job of a run, every attempt, in creation order.
    pub async fn list_jobs(&self, run_id: &RunId) -> Result<Vec<Job>, StoreError> {
        self.select_run_jobs("list_jobs", COLUMNS, decode, run_id)
            .await
    }

    /// Where each job of a run stands (every attempt), in [`Db::list_jobs`]'s order.
    pub async fn list_job_progress(&self, run_id: &RunId) -> Result<Vec<JobProgress>, StoreError> {
        self.select_run_jobs(
            "list_job_progress",
            PROGRESS_COLUMNS,
            decode_progress,
            run_id,
        )
        .await
    }

    /// [`Db::list_job_progress`] of the completed jobs whose result the run graph has not taken
    /// in yet ([`Db::list_unapplied_jobs`], for one run).
    pub async fn list_unapplied_progress(
        &self,
        run_id: &RunId,
    ) -> Result<Vec<JobProgress>, StoreError> {
        self.select_run_jobs_where(
            "list_unapplied_progress",
            PROGRESS_COLUMNS,
            decode_progress,
            run_id,
            "AND status = 'completed' AND graph_applied = 0",
        )
        .await
    }

    /// `columns` of every job of a run, every attempt, in creation order.
    async fn select_run_jobs<T>(
        &self,
        op: &'static str,
        columns: &str,
        decode_row: fn(&AnyRow) -> Result<T, StoreError>,
        run_id: &RunId,
    ) -> Result<Vec<T>, StoreError> {
        self.select_run_jobs_where(op, columns, decode_row, run_id, "")
            .await
    }

    /// [`Db::select_run_jobs`] of the jobs matching `and` (SQL text, no parameters).
    async fn select_run_jobs_where<T>(
        &self,
        op: &'static str,
        columns: &str,
        decode_row: fn(&AnyRow) -> Result<T, StoreError>,
        run_id: &RunId,
        and: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        read_conn!(self, op, |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM jobs WHERE run_id = $1 {and} \
                 ORDER BY created_ms, key, leg, attempt"
            ));
            let rows = sqlx::query(sql)
                .bind(run_id.as_str())
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode_row).collect()
        })
    }

    /// The jobs an agent is running now.
    pub async fn list_running_jobs_of_agent(
        &self,
        agent_id: &AgentId,
    ) -> Result<Vec<Job>, StoreError> {
        read_conn!(self, "list_running_jobs_of_agent", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE agent_id = $1 AND status = 'running' \
                 ORDER BY started_ms, id"
            ));
            let rows = sqlx::query(sql)
                .bind(agent_id.as_str())
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Gives the agent the oldest queued job it can take, in one transaction:
    ///
    /// - the job's labels are all among `agent_labels` (compared without case; a job without
    ///   labels fits any agent);
    /// - no other job of its concurrency group is running (the oldest queued job of a group goes
    ///   first once the group is free);
    /// - the job becomes `running` with `agent_id`, a fresh random lease id, `started_ms = now`
    ///   and `lease_expires_ms = now + lease_ms`; its run becomes `in_progress`; the agent's
    ///   `last_seen_ms` is `now`.
    ///
    /// Exactly one of any number of concurrent claimers gets a given job (SQLite: writers take
    /// turns; PostgreSQL: the row is locked with `FOR UPDATE SKIP LOCKED` and re-checked, and a
    /// concurrency group is taken with a transaction-scoped advisory lock). `None` when nothing
    /// fits. `NotFound` for an unknown agent, `Gone` for a revoked one.
    pub async fn claim_job(
        &self,
        agent_id: &AgentId,
        agent_labels: &[String],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        self.poll_claim(agent_id, agent_labels, None, lease_ms, now_ms)
            .await
    }

    /// [`Db::claim_job`] for an agent's poll: in the same transaction, the agent's status
    /// becomes `status` (when given) and `last_seen_ms` becomes `now`, also when nothing fits
    /// (what [`Db::touch_agent`] does, without a transaction of its own).
    pub async fn poll_claim(
        &self,
        agent_id: &AgentId,
        agent_labels: &[String],
        status: Option<super::AgentStatus>,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        // Most claims take one of the first queued jobs: a small first page, then larger ones
        // when the head of the queue is for other labels or blocked groups.
        const FIRST_PAGE: i64 = 8;
        const PAGE: i64 = 256;
        let backend = self.backend();
        let offered: HashSet<String> = agent_labels.iter().map(|l| l.to_lowercase()).collect();
        write_tx!(self, "claim_job", |conn| {
            // The agent is seen now (one statement when it is there and not revoked).
            let touched = match status {
                Some(status) => {
                    sqlx::query(
                        "UPDATE agents SET last_seen_ms = $2, status = $3 \
                         WHERE id = $1 AND revoked = 0",
                    )
                    .bind(agent_id.as_str())
                    .bind(now_ms)
                    .bind(status.as_str())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                        > 0
                }
                None => false,
            };
            if !touched {
                let revoked: Option<i64> =
                    sqlx::query_scalar("SELECT revoked FROM agents WHERE id = $1")
                        .bind(agent_id.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                match revoked {
                    None => return Err(StoreError::not_found("agent", agent_id)),
                    Some(0) => {}
                    Some(_) => {
                        return Err(StoreError::Gone(format!("agent {agent_id} is revoked")));
                    }
                }
            }
            // The groups with a running job, read when a candidate has a group.
            let mut blocked: Option<HashSet<String>> = None;
            let mut after = (i64::MIN, String::new());
            let mut page = FIRST_PAGE;
            loop {
                let candidates = sqlx::query(
                    "SELECT id, labels, concurrency_group, queue_seq FROM jobs \
                     WHERE status = 'queued' AND (queue_seq > $1 OR (queue_seq = $1 AND id > $2)) \
                     ORDER BY queue_seq, id LIMIT $3",
                )
                .bind(after.0)
                .bind(after.1.as_str())
                .bind(page)
                .fetch_all(&mut *conn)
                .await?;
                if candidates.is_empty() {
                    return Ok(None);
                }
                page = (page * 4).min(PAGE);
                for candidate in &candidates {
                    let id = JobId::from(candidate.text("id")?);
                    after = (candidate.int("queue_seq")?, id.as_str().to_owned());
                    let labels: Vec<String> = from_json("job labels", &candidate.text("labels")?)?;
                    if !labels_match(&labels, &offered) {
                        continue;
                    }
                    let group = candidate.opt_text("concurrency_group")?;
                    if let Some(group) = &group {
                        if blocked.is_none() {
                            blocked = Some(
                                sqlx::query_scalar(
                                    "SELECT DISTINCT concurrency_group FROM jobs \
                                     WHERE status = 'running' AND concurrency_group IS NOT NULL",
                                )
                                .fetch_all(&mut *conn)
                                .await?
                                .into_iter()
                                .collect(),
                            );
                        }
                        if blocked.as_ref().is_some_and(|b| b.contains(group)) {
                            continue;
                        }
                    }
                    if backend == Backend::Postgres {
                        let locked: Option<String> = sqlx::query_scalar(
                            "SELECT id FROM jobs WHERE id = $1 AND status = 'queued' \
                             FOR UPDATE SKIP LOCKED",
                        )
                        .bind(id.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                        if locked.is_none() {
                            continue;
                        }
                        if let Some(group) = &group {
                            let free: bool = sqlx::query_scalar(
                                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                            )
                            .bind(group.as_str())
                            .fetch_one(&mut *conn)
                            .await?;
                            let busy: Option<String> = if free {
                                sqlx::query_scalar(
                                    "SELECT id FROM jobs WHERE status = 'running' \
                                     AND concurrency_group = $1 LIMIT 1",
                                )
                                .bind(group.as_str())
                                .fetch_optional(&mut *conn)
                                .await?
                            } else {
                                None
                            };
                            if !free || busy.is_some() {
                                blocked.get_or_insert_default().insert(group.clone());
                                continue;
                            }
                        }
                    }
                    let lease_id = LeaseId::for_agent(agent_id);
                    let expires_ms = now_ms.saturating_add(lease_ms);
                    let sql = sqlx::AssertSqlSafe(format!(
                        "UPDATE jobs SET status = 'running', agent_id = $2, lease_id = $3, \
                         lease_expires_ms = $4, started_ms = $5 \
                         WHERE id = $1 AND status = 'queued' RETURNING {COLUMNS}"
                    ));
                    let Some(row) = sqlx::query(sql)
                        .bind(id.as_str())
                        .bind(agent_id.as_str())
                        .bind(lease_id.as_str())
                        .bind(expires_ms)
                        .bind(now_ms)
                        .fetch_optional(&mut *conn)
                        .await?
                    else {
                        continue;
                    };
                    let job = decode(&row)?;
                    sqlx::query(
                        "UPDATE runs SET status = 'in_progress', started_ms = COALESCE(started_ms, $2) \
                         WHERE id = $1 AND status = 'queued'",
                    )
                    .bind(job.run_id.as_str())
                    .bind(now_ms)
                    .execute(&mut *conn)
                    .await?;
                    if !touched {
                        sqlx::query("UPDATE agents SET last_seen_ms = $2 WHERE id = $1")
                            .bind(agent_id.as_str())
                            .bind(now_ms)
                            .execute(&mut *conn)
                            .await?;
                    }
                    let source = sqlx::query(
                        "SELECT r.repository_id, p.name, p.clone_url, r.sha, r.git_ref, r.trusted, \
                         r.number, r.attempt FROM runs r JOIN repositories p ON p.id = r.repository_id WHERE r.id = $1",
                    )
                    .bind(job.run_id.as_str())
                    .fetch_one(&mut *conn)
                    .await?;
                    let source = JobSource {
                        repository_id: RepositoryId::from(source.text("repository_id")?),
                        repository_name: source.text("name")?,
                        clone_url: source.text("clone_url")?,
                        sha: source.text("sha")?,
                        git_ref: source.text("git_ref")?,
                        trusted: source.flag("trusted")?,
                        run_number: source.int("number")?,
                        run_attempt: source.int("attempt")?,
                    };
                    return Ok(Some(ClaimedJob {
                        job,
                        lease_id,
                        lease_expires_ms: expires_ms,
                        source,
                    }));
                }
                if i64::try_from(candidates.len()).unwrap_or(i64::MAX) < PAGE {
                    return Ok(None);
                }
            }
        })
    }

    /// A heartbeat: extends the lease to `now + lease_ms` and tells whether a cancel was
    /// requested; the agent's `last_seen_ms` becomes `now`. A lease whose time has passed but
    /// that [`Db::expire_leases`] has not expired yet is still renewed. `Gone` when the lease
    /// is not current, `NotFound` when the job does not exist.
    pub async fn renew_lease(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseState, StoreError> {
        write_tx!(self, "renew_lease", |conn| {
            let row = sqlx::query(
                "UPDATE jobs SET lease_expires_ms = $3 \
                 WHERE id = $1 AND lease_id = $2 AND status = 'running' \
                 RETURNING lease_expires_ms, cancel_requested, agent_id",
            )
            .bind(job_id.as_str())
            .bind(lease_id.as_str())
            .bind(now_ms.saturating_add(lease_ms))
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                        .bind(job_id.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                return Err(match exists {
                    Some(_) => {
                        StoreError::Gone(format!("job {job_id} is not running under this lease"))
                    }
                    None => StoreError::not_found("job", job_id),
                });
            };
            if let Some(agent_id) = row.opt_text("agent_id")? {
                sqlx::query("UPDATE agents SET last_seen_ms = $2 WHERE id = $1")
                    .bind(agent_id)
                    .bind(now_ms)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(LeaseState {
                expires_ms: row.int("lease_expires_ms")?,
                cancel_requested: row.flag("cancel_requested")?,
            })
        })
    }

    /// Records the end of a job reported by its agent: status `completed`, the conclusion,
    /// reason and outputs, `finished_ms = now`.
    ///
    /// - Idempotent: the same lease finishing again gets `AlreadyRecorded` with the job as
    ///   first recorded (the first report wins).
    /// - `StaleLease` when the lease is not the job's (expired, cancelled before it started,
    ///   given to another agent): the agent's result is not recorded.
    /// - `LogSizeMismatch` when the agent sent a different number of log bytes than the store
    ///   has: nothing changes; the agent sends from `stored` on and finishes again.
    pub async fn finish_job(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        finish: &JobFinish,
        now_ms: i64,
    ) -> Result<FinishOutcome, FinishError> {
        self.finish_job_with(job_id, lease_id, &FinalReport::default(), finish, now_ms)
            .await
    }

    /// [`Db::finish_job`] with what the agent had not sent yet, in the same transaction: the
    /// end of the log at its offset (as [`Db::append_log_chunk`] takes it) and the last events
    /// and steps (as [`Db::record_job_events`]). A short job reports everything in one request.
    ///
    /// The log tail is appended first and `log_size` checked against the result: a tail that
    /// leaves a gap gives `LogSizeMismatch` with the stored size (the agent sends from there);
    /// one that differs from bytes stored already gives `LogConflict`. A repeat after the
    /// result was recorded gets `AlreadyRecorded`, and the report is not looked at again.
    pub async fn finish_job_with(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        report: &FinalReport,
        finish: &JobFinish,
        now_ms: i64,
    ) -> Result<FinishOutcome, FinishError> {
        let backend = self.backend();
        let cap = self.config().log_cap_bytes;
        let reason = finish.reason.as_ref().map(reason_json).transpose()?;
        let outputs = to_json("job outputs", &finish.outputs)?;
        let outcome = write_tx!(self, "finish_job", |conn| {
            let lock = match backend {
                Backend::Sqlite => {
                    "SELECT status, lease_id, cancel_requested, log_size, log_stored, \
                     log_truncated FROM jobs WHERE id = $1"
                }
                Backend::Postgres => {
                    "SELECT status, lease_id, cancel_requested, log_size, log_stored, \
                     log_truncated FROM jobs WHERE id = $1 FOR UPDATE"
                }
            };
            let Some(row) = sqlx::query(lock)
                .bind(job_id.as_str())
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Err(StoreError::not_found("job", job_id));
            };
            let status = JobStatus::parse(&row.text("status")?)?;
            let same_lease = row.opt_text("lease_id")?.as_deref() == Some(lease_id.as_str());
            let select = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
            match (status, same_lease) {
                (JobStatus::Completed, true) => {
                    let row = sqlx::query(select)
                        .bind(job_id.as_str())
                        .fetch_one(&mut *conn)
                        .await?;
                    return Ok(Leased::Done(Ok(FinishOutcome::AlreadyRecorded(decode(
                        &row,
                    )?))));
                }
                (JobStatus::Running, true) => {}
                _ => return Ok(Leased::Stale),
            }
            let mut sizes = LogSizes {
                size: row.unsigned("log_size")?,
                stored: row.unsigned("log_stored")?,
                truncated: row.flag("log_truncated")?,
            };
            if let Some((offset, bytes)) = &report.log_tail {
                let leased = LeasedJob {
                    cancel_requested: row.flag("cancel_requested")?,
                    log_size: sizes.size,
                    log_stored: sizes.stored,
                    log_truncated: sizes.truncated,
                };
                match store_chunk(conn, job_id, leased, *offset, bytes, cap).await? {
                    Ok((_, Some(new_sizes))) => sizes = new_sizes,
                    Ok((_, None)) => {}
                    Err(LogAppendError::Gap { expected }) => {
                        return Ok(Leased::Done(Err(FinishError::LogSizeMismatch {
                            stored: expected,
                            reported: finish.log_size,
                        })));
                    }
                    Err(LogAppendError::Conflict { offset }) => {
                        return Ok(Leased::Done(Err(FinishError::LogConflict { offset })));
                    }
                    Err(LogAppendError::StaleLease) => return Ok(Leased::Stale),
                    Err(LogAppendError::Store(e)) => return Err(e),
                }
            }
            if sizes.size != finish.log_size {
                // A tail that was stored stays (it was sent under the lease); the agent
                // continues from the size stored.
                if report.log_tail.is_some() {
                    store_log_sizes(conn, job_id, sizes).await?;
                }
                return Ok(Leased::Done(Err(FinishError::LogSizeMismatch {
                    stored: sizes.size,
                    reported: finish.log_size,
                })));
            }
            store_events(conn, job_id, &report.events, &report.steps, now_ms).await?;
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE jobs SET status = 'completed', conclusion = $2, reason = $3, \
                     outputs = $4, finished_ms = $5, log_size = $6, log_stored = $7, \
                     log_truncated = $8 WHERE id = $1 RETURNING {COLUMNS}"
            ));
            let row = sqlx::query(sql)
                .bind(job_id.as_str())
                .bind(conclusion_str(finish.conclusion))
                .bind(reason.as_deref())
                .bind(outputs.as_str())
                .bind(now_ms)
                .bind(size(sizes.size))
                .bind(size(sizes.stored))
                .bind(flag(sizes.truncated))
                .fetch_one(&mut *conn)
                .await?;
            Ok(Leased::Done(Ok(FinishOutcome::Recorded(decode(&row)?))))
        })?;
        match outcome {
            Leased::Done(result) => result,
            Leased::Stale => Err(FinishError::StaleLease),
        }
    }

    /// Completes every running job whose lease expired before `now` as `failure` with reason
    /// `agent_lost`, clears its lease (later writes of that agent are refused, and its finish is
    /// not recorded), and returns them. The caller decides on a retry
    /// ([`Db::insert_retry_attempt`]) and advances the run graph; the jobs stay in
    /// [`Db::list_unapplied_jobs`] until it does.
    ///
    /// A job whose cancel had been asked for (by a user, a concurrency group or its timeout)
    /// completes as `cancelled` instead: what was asked for happened, and it is not retried.
    pub async fn expire_leases(&self, now_ms: i64) -> Result<Vec<ExpiredJob>, StoreError> {
        write_tx!(self, "expire_leases", |conn| {
            end_lost_jobs(conn, LostAgent::LeaseExpiredBefore(now_ms), now_ms).await
        })
    }

    /// Queues the next attempt of a completed job for another agent: a copy of the job (same
    /// run, key, leg, spec, labels, group) with `attempt + 1`, queued now. The earlier attempt
    /// keeps its logs and is marked applied, since the new attempt's result replaces it in the
    /// run graph. Idempotent: if the next attempt exists already it is returned unchanged.
    /// `Conflict` when the job has not completed.
    pub async fn insert_retry_attempt(
        &self,
        job_id: &JobId,
        now_ms: i64,
    ) -> Result<Job, StoreError> {
        let backend = self.backend();
        write_tx!(self, "insert_retry_attempt", |conn| {
            // Locked on PostgreSQL: two callers retrying the same attempt take turns, and the
            // second finds the first one's new attempt.
            let sql = match backend {
                Backend::Sqlite => format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"),
                Backend::Postgres => format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"),
            };
            let sql = sqlx::AssertSqlSafe(sql);
            let Some(row) = sqlx::query(sql)
                .bind(job_id.as_str())
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Err(StoreError::not_found("job", job_id));
            };
            let old = decode(&row)?;
            if old.status != JobStatus::Completed {
                return Err(StoreError::Conflict(format!(
                    "job {job_id} is {}, only a completed job gets another attempt",
                    old.status.as_str()
                )));
            }
            let next_attempt = old.attempt + 1;
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE run_id = $1 AND key = $2 AND leg = $3 AND attempt = $4"
            ));
            let existing = sqlx::query(sql)
                .bind(old.run_id.as_str())
                .bind(old.key.as_str())
                .bind(i64::from(old.leg))
                .bind(i64::from(next_attempt))
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(existing) = existing {
                return decode(&existing);
            }
            let new = NewJob {
                key: old.key.clone(),
                leg: old.leg,
                attempt: next_attempt,
                name: old.name.clone(),
                spec: old.spec.clone(),
                secret_scope: old.secret_scope.clone(),
                labels: old.labels.clone(),
                status: JobStatus::Queued,
                concurrency_group: old.concurrency_group.clone(),
                timeout_ms: old.timeout_ms,
            };
            let job = insert_job_row(conn, &old.run_id, &new, now_ms).await?;
            sqlx::query("UPDATE jobs SET graph_applied = 1 WHERE id = $1")
                .bind(job_id.as_str())
                .execute(&mut *conn)
                .await?;
            Ok(job)
        })
    }

    /// Cancels a job or every job of a run: waiting and queued jobs complete as `cancelled`
    /// at once (reason `cancelled`), running ones get `cancel_requested`, which their agents see
    /// in the answer to their next heartbeat, log chunk or events. Completed jobs are left as
    /// they are. A run is also flagged `cancel_requested` so the scheduler cancels its graph.
    /// Repeating it is harmless. `NotFound` when the job or run does not exist.
    pub async fn request_cancel(
        &self,
        target: &CancelTarget,
        now_ms: i64,
    ) -> Result<CancelOutcome, StoreError> {
        write_tx!(self, "request_cancel", |conn| match target {
            CancelTarget::Job(job_id) => {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                        .bind(job_id.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                if exists.is_none() {
                    return Err(StoreError::not_found("job", job_id));
                }
                cancel_jobs_where(conn, CancelCondition::Job, job_id.as_str(), now_ms).await
            }
            CancelTarget::Run(run_id) => {
                let done = sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = $1")
                    .bind(run_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("run", run_id));
                }
                cancel_jobs_where(conn, CancelCondition::Run, run_id.as_str(), now_ms).await
            }
        })
    }

    /// The queue, oldest first: what waits, for which labels, in which group, and the running
    /// job of its group that holds it back (if any). Which agents could take it is the caller's
    /// comparison with [`Db::list_agents`].
    pub async fn list_queued_jobs(&self, limit: u32) -> Result<Vec<QueuedJob>, StoreError> {
        read_conn!(self, "list_queued_jobs", |conn| {
            let rows = sqlx::query(
                "SELECT j.id, j.run_id, r.repository_id, j.name, j.labels, j.concurrency_group, \
                 j.queued_ms, (SELECT b.id FROM jobs b WHERE b.status = 'running' \
                 AND b.concurrency_group = j.concurrency_group ORDER BY b.started_ms LIMIT 1) \
                 AS blocked_by \
                 FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.status = 'queued' \
                 ORDER BY j.queue_seq, j.id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(QueuedJob {
                        job_id: JobId::from(row.text("id")?),
                        run_id: RunId::from(row.text("run_id")?),
                        repository_id: RepositoryId::from(row.text("repository_id")?),
                        name: row.text("name")?,
                        labels: from_json("job labels", &row.text("labels")?)?,
                        concurrency_group: row.opt_text("concurrency_group")?,
                        queued_ms: row.opt_int("queued_ms")?.unwrap_or_default(),
                        blocked_by: row.opt_text("blocked_by")?.map(JobId::from),
                    })
                })
                .collect()
        })
    }

    /// Completed jobs whose result the run graph has not taken in yet, oldest first: finished
    /// by agents, expired, or cancelled before they ran. The scheduler applies them with
    /// [`Db::update_run_graph`] (`applied_jobs`); after a crash between a finish and the graph
    /// update this is how it catches up.
    pub async fn list_unapplied_jobs(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        read_conn!(self, "list_unapplied_jobs", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE status = 'completed' AND graph_applied = 0 \
                 ORDER BY finished_ms, id LIMIT $1"
            ));
            let rows = sqlx::query(sql)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Fails every job queued before `queued_before_ms` that no agent has taken (the queue
    /// timeout) with the reason `reason` gives for it, so a job no agent can run ends instead of
    /// waiting forever. Returns the jobs so failed; the scheduler takes them into their run
    /// graphs like any completed job.
    pub async fn expire_queued_jobs(
        &self,
        queued_before_ms: i64,
        now_ms: i64,
        reason: impl Fn(&Job) -> FailureReason,
    ) -> Result<Vec<Job>, StoreError> {
        // Called every scheduler round: a read answers the usual "none", without a write
        // transaction.
        let any: Option<String> = read_conn!(self, "expire_queued_jobs", |conn| {
            Ok(sqlx::query_scalar(
                "SELECT id FROM jobs WHERE status = 'queued' AND queued_ms < $1 LIMIT 1",
            )
            .bind(queued_before_ms)
            .fetch_optional(&mut *conn)
            .await?)
        })?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        write_tx!(self, "expire_queued_jobs", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE status = 'queued' AND queued_ms < $1 \
                 ORDER BY queued_ms, id"
            ));
            let rows = sqlx::query(sql)
                .bind(queued_before_ms)
                .fetch_all(&mut *conn)
                .await?;
            let mut expired = Vec::new();
            for row in &rows {
                let job = decode(row)?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE jobs SET status = 'completed', conclusion = 'failure', reason = $2, \
                     finished_ms = $3 WHERE id = $1 AND status = 'queued' RETURNING {COLUMNS}"
                ));
                if let Some(row) = sqlx::query(sql)
                    .bind(job.id.as_str())
                    .bind(reason_json(&reason(&job))?.as_str())
                    .bind(now_ms)
                    .fetch_optional(&mut *conn)
                    .await?
                {
                    expired.push(decode(&row)?);
                }
            }
            Ok(expired)
        })
    }

    /// Running jobs past their `timeout_ms` (counted from `started_ms`), for the scheduler to
    /// cancel.
    pub async fn list_timed_out_jobs(&self, now_ms: i64) -> Result<Vec<Job>, StoreError> {
        read_conn!(self, "list_timed_out_jobs", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE status = 'running' AND timeout_ms IS NOT NULL \
                 AND started_ms + timeout_ms < $1 ORDER BY started_ms, id"
            ));
            let rows = sqlx::query(sql).bind(now_ms).fetch_all(&mut *conn).await?;
            rows.iter().map(decode).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_is_a_case_insensitive_subset() {
        let offered: HashSet<String> = ["linux", "x64", "gpu"].map(String::from).into();
        let check = |needed: &[&str], expected: bool| {
            let needed: Vec<String> = needed.iter().map(|s| s.to_string()).collect();
            assert_eq!(labels_match(&needed, &offered), expected, "{needed:?}");
        };
        check(&[], true);
        check(&["linux"], true);
        check(&["Linux", "X64"], true);
        check(&["linux", "arm64"], false);
    }
}
