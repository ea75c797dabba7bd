//! `runs`: one triggering of one workflow, with its run graph state. A run is inserted with its
//! first jobs and statuses in one transaction, so a run never exists without them; its number
//! comes from its repository's counter in that same transaction. The scheduler moves the graph
//! forward with [`Db::update_run_graph`], guarded by `graph_version`.

use super::column::{RowExt, conclusion_str, flag};
use super::jobs::{self, CancelOutcome, Job, NewJob};
use super::outbox::{self, NewStatus};
use super::{Backend, Db, DeliveryId, JobId, RepositoryId, RunId, StoreError};
use gantry_protocol::Conclusion;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::fmt;
use std::str::FromStr;

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// No job has started yet.
    Queued,
    InProgress,
    /// Every job ended; see `conclusion`.
    Completed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
        }
    }
}

impl FromStr for RunStatus {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<RunStatus, StoreError> {
        match text {
            "queued" => Ok(RunStatus::Queued),
            "in_progress" => Ok(RunStatus::InProgress),
            "completed" => Ok(RunStatus::Completed),
            other => Err(StoreError::corrupt("run status", other)),
        }
    }
}

/// A stored run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub repository_id: RepositoryId,
    /// 1, 2, 3... per repository.
    pub number: i64,
    pub workflow_file: String,
    pub workflow_name: String,
    /// What lists show: `run-name`, else the commit or pull request title.
    pub title: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    /// The `RunContext`, JSON.
    pub context: String,
    /// The workflow files at `sha`, JSON.
    pub sources: String,
    /// The run graph's state, JSON.
    pub graph: String,
    /// Incremented by each [`Db::update_run_graph`].
    pub graph_version: i64,
    pub status: RunStatus,
    pub conclusion: Option<Conclusion>,
    /// False for fork pull requests: no secrets.
    pub trusted: bool,
    pub concurrency_group: Option<String>,
    pub cancel_in_progress: bool,
    /// Someone asked to cancel the run ([`Db::request_cancel`]).
    pub cancel_requested: bool,
    pub attempt: u32,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub delivery_id: Option<DeliveryId>,
}

/// A run in a list: without its JSON documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub id: RunId,
    pub repository_id: RepositoryId,
    pub repository_name: String,
    pub number: i64,
    pub workflow_file: String,
    pub workflow_name: String,
    pub title: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub status: RunStatus,
    pub conclusion: Option<Conclusion>,
    pub trusted: bool,
    pub concurrency_group: Option<String>,
    pub cancel_requested: bool,
    pub attempt: u32,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

/// What the scheduler looks at first when it advances a run ([`Db::get_run_head`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunHead {
    pub id: RunId,
    pub workflow_name: String,
    pub status: RunStatus,
    pub graph_version: i64,
    pub cancel_requested: bool,
}

/// A run to insert. Its number, id and times are assigned by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    pub repository_id: RepositoryId,
    pub workflow_file: String,
    pub workflow_name: String,
    pub title: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub context: String,
    pub sources: String,
    pub graph: String,
    /// Usually `Queued`; `Completed` (with a conclusion) for a run whose jobs were all skipped
    /// at planning.
    pub status: RunStatus,
    pub conclusion: Option<Conclusion>,
    pub trusted: bool,
    pub concurrency_group: Option<String>,
    pub cancel_in_progress: bool,
    pub attempt: u32,
    /// Set by [`Db::insert_runs_for_delivery`]; `None` for manual and scheduled runs.
    pub delivery_id: Option<DeliveryId>,
}

/// A run with its first jobs and statuses, for [`Db::insert_runs_for_delivery`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewRunWithJobs {
    pub run: NewRun,
    pub jobs: Vec<NewJob>,
    pub statuses: Vec<NewStatus>,
}

/// Which runs to list ([`Db::list_runs`]); every field narrows the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub repository_id: Option<RepositoryId>,
    /// Runs of `refs/heads/<branch>`.
    pub branch: Option<String>,
    pub status: Option<RunStatus>,
    pub event: Option<String>,
    pub workflow_file: Option<String>,
    /// Continue after this cursor (the `next` of the previous page).
    pub before: Option<RunCursor>,
    /// Page size; 0 is taken as 50, more than 500 as 500.
    pub limit: u32,
}

/// A position in the run list (newest first), as an opaque string for APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    pub created_ms: i64,
    pub id: RunId,
}

impl fmt::Display for RunCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_ms, self.id)
    }
}

/// A run cursor that is not one this store wrote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid run cursor {0:?}")]
pub struct InvalidRunCursor(pub String);

impl FromStr for RunCursor {
    type Err = InvalidRunCursor;

    fn from_str(text: &str) -> Result<RunCursor, InvalidRunCursor> {
        let invalid = || InvalidRunCursor(text.to_owned());
        let (ms, id) = text.split_once('.').ok_or_else(invalid)?;
        Ok(RunCursor {
            created_ms: ms.parse().map_err(|_| invalid())?,
            id: RunId::from(id),
        })
    }
}

/// A page of runs, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<RunCursor>,
}

/// One step of the scheduler on a run ([`Db::update_run_graph`]).
///
/// The scheduler reads the run (`graph`, `graph_version`), feeds the graph what happened
/// (finished jobs from [`Db::list_unapplied_jobs`], a cancel), and stores the outcome here: the
/// new graph state and run status, the jobs the graph starts, the jobs it holds back or lets go,
/// the jobs it cancels, which finished jobs it has taken in, and commit statuses to send.
#[derive(Clone, Debug, PartialEq)]
pub struct RunGraphUpdate {
    /// The `graph_version` the graph was read at. If the run changed since, nothing is stored
    /// and the answer is `Conflict`: read the run again and redo the step.
    pub expected_version: i64,
    pub graph: String,
    pub status: RunStatus,
    pub conclusion: Option<Conclusion>,
    /// Jobs the graph starts now (queued) or holds (waiting).
    pub new_jobs: Vec<NewJob>,
    /// Waiting jobs of this run to queue now.
    pub queue_jobs: Vec<JobId>,
    /// Jobs of this run to cancel (as [`Db::request_cancel`] does for one job).
    pub cancel_jobs: Vec<JobId>,
    /// Completed jobs of this run whose result is now part of `graph`.
    pub applied_jobs: Vec<JobId>,
    pub statuses: Vec<NewStatus>,
}

/// What [`Db::update_run_graph`] stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RunGraphUpdated {
    pub run: Run,
    pub new_jobs: Vec<Job>,
    pub cancelled: CancelOutcome,
}

const COLUMNS: &str = "id, repository_id, number, workflow_file, workflow_name, title, event, \
     git_ref, sha, context, sources, graph, graph_version, status, conclusion, trusted, \
     concurrency_group, cancel_in_progress, cancel_requested, attempt, created_ms, started_ms, \
     finished_ms, delivery_id";

const SUMMARY_COLUMNS: &str = "r.id, r.repository_id, p.name AS repository_name, r.number, \
     r.workflow_file, r.workflow_name, r.title, r.event, r.git_ref, r.sha, r.status, \
     r.conclusion, r.trusted, r.concurrency_group, r.cancel_requested, r.attempt, r.created_ms, \
     r.started_ms, r.finished_ms";

fn attempt(row: &AnyRow) -> Result<u32, StoreError> {
    let value = row.int("attempt")?;
    u32::try_from(value).map_err(|_| StoreError::corrupt("run attempt", value))
}

pub(crate) fn decode(row: &AnyRow) -> Result<Run, StoreError> {
    Ok(Run {
        id: RunId::from(row.text("id")?),
        repository_id: RepositoryId::from(row.text("repository_id")?),
        number: row.int("number")?,
        workflow_file: row.text("workflow_file")?,
        workflow_name: row.text("workflow_name")?,
        title: row.text("title")?,
        event: row.text("event")?,
        git_ref: row.text("git_ref")?,
        sha: row.text("sha")?,
        context: row.text("context")?,
        sources: row.text("sources")?,
        graph: row.text("graph")?,
        graph_version: row.int("graph_version")?,
        status: row.text("status")?.parse()?,
        conclusion: row.opt_conclusion("conclusion")?,
        trusted: row.flag("trusted")?,
        concurrency_group: row.opt_text("concurrency_group")?,
        cancel_in_progress: row.flag("cancel_in_progress")?,
        cancel_requested: row.flag("cancel_requested")?,
        attempt: attempt(row)?,
        created_ms: row.int("created_ms")?,
        started_ms: row.opt_int("started_ms")?,
        finished_ms: row.opt_int("finished_ms")?,
        delivery_id: row.opt_text("delivery_id")?.map(DeliveryId::from),
    })
}

fn decode_summary(row: &AnyRow) -> Result<RunSummary, StoreError> {
    Ok(RunSummary {
        id: RunId::from(row.text("id")?),
        repository_id: RepositoryId::from(row.text("repository_id")?),
        repository_name: row.text("repository_name")?,
        number: row.int("number")?,
        workflow_file: row.text("workflow_file")?,
        workflow_name: row.text("workflow_name")?,
        title: row.text("title")?,
        event: row.text("event")?,
        git_ref: row.text("git_ref")?,
        sha: row.text("sha")?,
        status: row.text("status")?.parse()?,
        conclusion: row.opt_conclusion("conclusion")?,
        trusted: row.flag("trusted")?,
        concurrency_group: row.opt_text("concurrency_group")?,
        cancel_requested: row.flag("cancel_requested")?,
        attempt: attempt(row)?,
        created_ms: row.int("created_ms")?,
        started_ms: row.opt_int("started_ms")?,
        finished_ms: row.opt_int("finished_ms")?,
    })
}

/// Allocates the next run number of a repository, inside the run-creating transaction: the
/// repository's counter row is updated (and so locked on PostgreSQL until the transaction
/// ends), so concurrent run insertions get distinct, gap-free numbers.
pub(crate) async fn next_run_number(
    conn: &mut AnyConnection,
    repository_id: &RepositoryId,
) -> Result<i64, StoreError> {
    let number: Option<i64> = sqlx::query_scalar(
        "UPDATE repositories SET run_counter = run_counter + 1 WHERE id = $1 RETURNING run_counter",
    )
    .bind(repository_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    number.ok_or_else(|| StoreError::not_found("repository", repository_id))
}

/// Inserts a run with its jobs and statuses (inside the caller's transaction).
pub(crate) async fn insert_run_rows(
    conn: &mut AnyConnection,
    new: &NewRun,
    new_jobs: &[NewJob],
    statuses: &[NewStatus],
    now_ms: i64,
) -> Result<(Run, Vec<Job>), StoreError> {
    let id = RunId::generate();
    let number = next_run_number(conn, &new.repository_id).await?;
    let finished_ms = (new.status == RunStatus::Completed).then_some(now_ms);
    let started_ms = (new.status != RunStatus::Queued).then_some(now_ms);
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO runs (id, repository_id, number, workflow_file, workflow_name, title, event, \
         git_ref, sha, context, sources, graph, status, conclusion, trusted, concurrency_group, \
         cancel_in_progress, attempt, created_ms, started_ms, finished_ms, delivery_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22) RETURNING {COLUMNS}"
    ));
    let row = sqlx::query(sql)
        .bind(id.as_str())
        .bind(new.repository_id.as_str())
        .bind(number)
        .bind(new.workflow_file.as_str())
        .bind(new.workflow_name.as_str())
        .bind(new.title.as_str())
        .bind(new.event.as_str())
        .bind(new.git_ref.as_str())
        .bind(new.sha.as_str())
        .bind(new.context.as_str())
        .bind(new.sources.as_str())
        .bind(new.graph.as_str())
        .bind(new.status.as_str())
        .bind(new.conclusion.map(conclusion_str))
        .bind(flag(new.trusted))
        .bind(new.concurrency_group.as_deref())
        .bind(flag(new.cancel_in_progress))
        .bind(i64::from(new.attempt))
        .bind(now_ms)
        .bind(started_ms)
        .bind(finished_ms)
        .bind(new.delivery_id.as_ref().map(DeliveryId::as_str))
        .fetch_one(&mut *conn)
        .await?;
    let run = decode(&row)?;
    let mut stored_jobs = Vec::with_capacity(new_jobs.len());
    for job in new_jobs {
        stored_jobs.push(jobs::insert_job_row(conn, &run.id, job, now_ms).await?);
    }
    for status in statuses {
        outbox::insert_status_row(conn, &run.id, status, now_ms).await?;
    }
    Ok((run, stored_jobs))
}

/// The runs inserted for a delivery, in number order.
pub(crate) async fn select_runs_of_delivery(
    conn: &mut AnyConnection,
    delivery_id: &DeliveryId,
) -> Result<Vec<Run>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM runs WHERE delivery_id = $1 ORDER BY number"
    ));
    let rows = sqlx::query(sql)
        .bind(delivery_id.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// Reads a run inside a write; on PostgreSQL the row stays locked until the transaction ends.
pub(crate) async fn lock_run(
    conn: &mut AnyConnection,
    backend: Backend,
    run_id: &RunId,
) -> Result<Run, StoreError> {
    let sql = match backend {
        Backend::Sqlite => format!("SELECT {COLUMNS} FROM runs WHERE id = $1"),
        Backend::Postgres => format!("SELECT {COLUMNS} FROM runs WHERE id = $1 FOR UPDATE"),
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(run_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => decode(&row),
        None => Err(StoreError::not_found("run", run_id)),
    }
}

/// A bound value of a dynamically built query.
enum Arg {
    Text(String),
    Int(i64),
}

impl Db {
    /// Inserts a run, its first jobs and its pending statuses in one transaction, with the next
    /// run number of its repository (distinct and gap-free under concurrent inserts).
    /// `NotFound` when the repository does not exist.
    pub async fn insert_run_with_jobs(
        &self,
        run: &NewRun,
        jobs: &[NewJob],
        statuses: &[NewStatus],
        now_ms: i64,
    ) -> Result<(Run, Vec<Job>), StoreError> {
        write_tx!(self, "insert_run_with_jobs", |conn| {
            insert_run_rows(conn, run, jobs, statuses, now_ms).await
        })
    }

    pub async fn find_run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        read_conn!(self, "find_run", |conn| {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM runs WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// A run's status and graph version, without its JSON documents. `NotFound` when absent.
    pub async fn get_run_head(&self, id: &RunId) -> Result<RunHead, StoreError> {
        read_conn!(self, "get_run_head", |conn| {
            let row = sqlx::query(
                "SELECT id, workflow_name, status, graph_version, cancel_requested \
                 FROM runs WHERE id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::not_found("run", id))?;
            Ok(RunHead {
                id: RunId::from(row.text("id")?),
                workflow_name: row.text("workflow_name")?,
                status: row.text("status")?.parse()?,
                graph_version: row.int("graph_version")?,
                cancel_requested: row.flag("cancel_requested")?,
            })
        })
    }

    pub async fn get_run(&self, id: &RunId) -> Result<Run, StoreError> {
        self.find_run(id)
            .await?
            .ok_or_else(|| StoreError::not_found("run", id))
    }

    /// A run by its repository and number (`/repo/runs/42`).
    pub async fn find_run_by_number(
        &self,
        repository_id: &RepositoryId,
        number: i64,
    ) -> Result<Option<Run>, StoreError> {
        read_conn!(self, "find_run_by_number", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM runs WHERE repository_id = $1 AND number = $2"
            ));
            let row = sqlx::query(sql)
                .bind(repository_id.as_str())
                .bind(number)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Runs matching `filter`, newest first (by creation, then id), one page at a time: pass
    /// the answer's `next` as `before` for the next page. Pages are stable while new runs
    /// arrive.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let limit = match filter.limit {
            0 => 50,
            n => n.min(500),
        };
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let mut arg = |value: Arg| {
            args.push(value);
            args.len()
        };
        if let Some(repository_id) = &filter.repository_id {
            let n = arg(Arg::Text(repository_id.as_str().to_owned()));
            conditions.push(format!("r.repository_id = ${n}"));
        }
        if let Some(branch) = &filter.branch {
            let n = arg(Arg::Text(format!("refs/heads/{branch}")));
            conditions.push(format!("r.git_ref = ${n}"));
        }
        if let Some(status) = filter.status {
            let n = arg(Arg::Text(status.as_str().to_owned()));
            conditions.push(format!("r.status = ${n}"));
        }
        if let Some(event) = &filter.event {
            let n = arg(Arg::Text(event.clone()));
            conditions.push(format!("r.event = ${n}"));
        }
        if let Some(file) = &filter.workflow_file {
            let n = arg(Arg::Text(file.clone()));
            conditions.push(format!("r.workflow_file = ${n}"));
        }
        if let Some(cursor) = &filter.before {
            let ms = arg(Arg::Int(cursor.created_ms));
            let id = arg(Arg::Text(cursor.id.as_str().to_owned()));
            conditions.push(format!(
                "(r.created_ms < ${ms} OR (r.created_ms = ${ms} AND r.id < ${id}))"
            ));
        }
        let limit_arg = arg(Arg::Int(i64::from(limit) + 1));
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs r JOIN repositories p ON p.id = r.repository_id \
             {where_clause} ORDER BY r.created_ms DESC, r.id DESC LIMIT ${limit_arg}"
        );
        let mut runs = read_conn!(self, "list_runs", |conn| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for value in &args {
                query = match value {
                    Arg::Text(text) => query.bind(text.as_str()),
                    Arg::Int(int) => query.bind(*int),
                };
            }
            let rows = query.fetch_all(&mut *conn).await?;
            rows.iter()
                .map(decode_summary)
                .collect::<Result<Vec<_>, _>>()
        })?;
        let next = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            runs.last().map(|run| RunCursor {
                created_ms: run.created_ms,
                id: run.id.clone(),
            })
        } else {
            None
        };
        Ok(RunPage { runs, next })
    }

    /// Runs of a concurrency group that have not completed, oldest first (for `concurrency:`
    /// at the workflow level: the scheduler holds or cancels the others).
    pub async fn list_active_runs_in_group(
        &self,
        group: &str,
    ) -> Result<Vec<RunSummary>, StoreError> {
        read_conn!(self, "list_active_runs_in_group", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs r JOIN repositories p ON p.id = r.repository_id \
                 WHERE r.concurrency_group = $1 AND r.status <> 'completed' \
                 ORDER BY r.created_ms, r.id"
            ));
            let rows = sqlx::query(sql).bind(group).fetch_all(&mut *conn).await?;
            rows.iter().map(decode_summary).collect()
        })
    }

    /// Runs that have not completed, oldest first (the scheduler's work list after a restart).
    pub async fn list_active_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        read_conn!(self, "list_active_runs", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs r JOIN repositories p ON p.id = r.repository_id \
                 WHERE r.status <> 'completed' ORDER BY r.created_ms, r.id"
            ));
            let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
            rows.iter().map(decode_summary).collect()
        })
    }

    /// Stores one step of the scheduler on a run, in one transaction (see [`RunGraphUpdate`]):
    /// the graph and `graph_version + 1`, the status and conclusion (`started_ms` is set the
    /// first time the run leaves `queued`, `finished_ms` when it completes), the new jobs,
    /// queued and cancelled jobs, applied jobs, and statuses (numbered after the run's last).
    ///
    /// `Conflict` when `graph_version` is not `expected_version` (another step came first) or a
    /// new job's (key, leg, attempt) exists; nothing is stored then. `NotFound` for an unknown
    /// run, or a job id in the lists that is not this run's.
    pub async fn update_run_graph(
        &self,
        run_id: &RunId,
        update: &RunGraphUpdate,
        now_ms: i64,
    ) -> Result<RunGraphUpdated, StoreError> {
        let backend = self.backend();
        write_tx!(self, "update_run_graph", |conn| {
            let current = lock_run(conn, backend, run_id).await?;
            if current.graph_version != update.expected_version {
                return Err(StoreError::Conflict(format!(
                    "run {run_id} is at graph version {}, not {}",
                    current.graph_version, update.expected_version
                )));
            }
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE runs SET graph = $2, graph_version = graph_version + 1, status = $3, \
                 conclusion = $4, \
                 started_ms = CASE WHEN started_ms IS NULL AND $3 <> 'queued' THEN $5 \
                 ELSE started_ms END, \
                 finished_ms = CASE WHEN $3 = 'completed' THEN COALESCE(finished_ms, $5) \
                 ELSE NULL END \
                 WHERE id = $1 RETURNING {COLUMNS}"
            ));
            let row = sqlx::query(sql)
                .bind(run_id.as_str())
                .bind(update.graph.as_str())
                .bind(update.status.as_str())
                .bind(update.conclusion.map(conclusion_str))
                .bind(now_ms)
                .fetch_one(&mut *conn)
                .await?;
            let run = decode(&row)?;
            let mut new_jobs = Vec::with_capacity(update.new_jobs.len());
            for job in &update.new_jobs {
                new_jobs.push(jobs::insert_job_row(conn, run_id, job, now_ms).await?);
            }
            for job_id in &update.queue_jobs {
                let done = sqlx::query(
                    "UPDATE jobs SET status = 'queued', queued_ms = $3, \
                     queue_seq = (SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM jobs) \
                     WHERE id = $1 AND run_id = $2 AND status = 'waiting'",
                )
                .bind(job_id.as_str())
                .bind(run_id.as_str())
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("waiting job of this run", job_id));
                }
            }
            let mut cancelled = CancelOutcome::default();
            for job_id in &update.cancel_jobs {
                let outcome = jobs::cancel_job_of_run(conn, run_id, job_id, now_ms).await?;
                cancelled.completed.extend(outcome.completed);
                cancelled.signalled.extend(outcome.signalled);
            }
            for job_id in &update.applied_jobs {
                let done = sqlx::query(
                    "UPDATE jobs SET graph_applied = 1 \
                     WHERE id = $1 AND run_id = $2 AND status = 'completed'",
                )
                .bind(job_id.as_str())
                .bind(run_id.as_str())
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("completed job of this run", job_id));
                }
            }
            for status in &update.statuses {
                outbox::insert_status_row(conn, run_id, status, now_ms).await?;
            }
            Ok(RunGraphUpdated {
                run,
                new_jobs,
                cancelled,
            })
        })
    }
}
