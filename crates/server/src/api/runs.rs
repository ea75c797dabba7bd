//! `/api/v1/runs`: list runs (filtered, newest first, a page at a time), show one with its jobs
//! and the jobs that never ran, cancel one, and run one again ([`super::rerun`]).

use super::auth::{ApiQuery, Reader, Writer};
use super::jobs::JobView;
use super::repositories::lookup_repository;
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::run_state::GraphDoc;
use crate::store::{CancelTarget, Run, RunCursor, RunFilter, RunId, RunStatus, RunSummary};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gantry_protocol::Conclusion;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A run in a list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunSummaryView {
    pub id: String,
    pub repository_id: String,
    pub repository: String,
    pub number: i64,
    pub attempt: u32,
    pub workflow_file: String,
    pub workflow_name: String,
    pub title: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// `success`, `failure`, `cancelled` or `skipped` once completed.
    pub conclusion: Option<Conclusion>,
    /// False for runs of fork pull requests (no secrets).
    pub trusted: bool,
    pub concurrency_group: Option<String>,
    pub cancel_requested: bool,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl RunSummaryView {
    pub fn from_summary(run: &RunSummary) -> RunSummaryView {
        RunSummaryView {
            id: run.id.to_string(),
            repository_id: run.repository_id.to_string(),
            repository: run.repository_name.clone(),
            number: run.number,
            attempt: run.attempt,
            workflow_file: run.workflow_file.clone(),
            workflow_name: run.workflow_name.clone(),
            title: run.title.clone(),
            event: run.event.clone(),
            git_ref: run.git_ref.clone(),
            sha: run.sha.clone(),
            status: run.status.as_str().to_owned(),
            conclusion: run.conclusion,
            trusted: run.trusted,
            concurrency_group: run.concurrency_group.clone(),
            cancel_requested: run.cancel_requested,
            created_ms: run.created_ms,
            started_ms: run.started_ms,
            finished_ms: run.finished_ms,
        }
    }

    pub fn from_run(run: &Run, repository: &str) -> RunSummaryView {
        RunSummaryView {
            id: run.id.to_string(),
            repository_id: run.repository_id.to_string(),
            repository: repository.to_owned(),
            number: run.number,
            attempt: run.attempt,
            workflow_file: run.workflow_file.clone(),
            workflow_name: run.workflow_name.clone(),
            title: run.title.clone(),
            event: run.event.clone(),
            git_ref: run.git_ref.clone(),
            sha: run.sha.clone(),
            status: run.status.as_str().to_owned(),
            conclusion: run.conclusion,
            trusted: run.trusted,
            concurrency_group: run.concurrency_group.clone(),
            cancel_requested: run.cancel_requested,
            created_ms: run.created_ms,
            started_ms: run.started_ms,
            finished_ms: run.finished_ms,
        }
    }
}

/// A page of runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunSummaryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A job-level fact with no job row: skipped, failed before it could start, a called
/// workflow's result, a job kept from an earlier attempt; key `""` is about the whole run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NoteView {
    pub key: String,
    pub name: String,
    pub conclusion: Conclusion,
    pub reason: Option<String>,
}

/// A run with its jobs.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunSummaryView,
    /// Every job row, every attempt, in creation order.
    pub jobs: Vec<JobView>,
    /// Jobs that never had a job row (see [`NoteView`]).
    pub notes: Vec<NoteView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A repository id or `owner/repo`.
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub status: Option<String>,
    pub event: Option<String>,
    pub workflow: Option<String>,
    pub before: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list_runs(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<RunList>, ApiError> {
    let repository_id = match &query.repository {
        Some(text) => Some(lookup_repository(&state, text).await?.id),
        None => None,
    };
    let status = query
        .status
        .as_deref()
        .map(|s| {
            s.parse::<RunStatus>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "status {s:?} is not one of queued, in_progress, completed"
                ))
            })
        })
        .transpose()?;
    let before = query
        .before
        .as_deref()
        .map(|c| {
            c.parse::<RunCursor>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .transpose()?;
    let filter = RunFilter {
        repository_id,
        branch: query.branch.map(|b| {
            b.strip_prefix("refs/heads/")
                .map(str::to_owned)
                .unwrap_or(b)
        }),
        status,
        event: query.event,
        workflow_file: query.workflow,
        before,
        limit: query.limit.unwrap_or(0),
    };
    let page = state.db.list_runs(&filter).await.map_err(store_error)?;
    Ok(Json(RunList {
        runs: page.runs.iter().map(RunSummaryView::from_summary).collect(),
        next: page.next.map(|c| c.to_string()),
    }))
}

/// The run with this id; 404 when there is none.
pub async fn find_run(state: &AppState, id: &str) -> Result<Run, ApiError> {
    state
        .db
        .find_run(&RunId::from(id))
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("run {id} not found")))
}

/// The run's repository name (empty if the repository vanished meanwhile).
pub async fn repository_name(state: &AppState, run: &Run) -> Result<String, ApiError> {
    Ok(state
        .db
        .find_repository(&run.repository_id)
        .await
        .map_err(store_error)?
        .map(|r| r.name)
        .unwrap_or_default())
}

pub async fn get_run(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let run = find_run(&state, &id).await?;
    Ok(Json(run_detail(&state, &run).await?))
}

/// A run with its jobs and notes, as `GET /api/v1/runs/{id}` answers.
pub async fn run_detail(state: &AppState, run: &Run) -> Result<RunDetail, ApiError> {
    let repository = repository_name(state, run).await?;
    let jobs = state.db.list_jobs(&run.id).await.map_err(store_error)?;
    let agents: HashMap<String, String> = state
        .db
        .list_agents()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|a| (a.id.into_string(), a.name))
        .collect();
    let doc: GraphDoc = if run.graph.trim().is_empty() {
        GraphDoc::default()
    } else {
        serde_json::from_str(&run.graph).unwrap_or_else(|e| {
            tracing::warn!(run = %run.id, error = %e, "stored graph unreadable");
            GraphDoc::default()
        })
    };
    let with_rows: HashSet<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    let notes = doc
        .notes
        .iter()
        .filter(|n| !with_rows.contains(n.key.as_str()))
        .map(|n| NoteView {
            key: n.key.clone(),
            name: n.name.clone(),
            conclusion: n.conclusion,
            reason: n.reason.clone(),
        })
        .collect();
    Ok(RunDetail {
        run: RunSummaryView::from_run(run, &repository),
        jobs: jobs
            .iter()
            .map(|j| JobView::new(j, j.agent_id.as_ref().and_then(|a| agents.get(a.as_str()))))
            .collect(),
        notes,
    })
}

/// What a cancel did.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CancelAnswer {
    /// Jobs that had not started, now cancelled.
    pub cancelled: Vec<String>,
    /// Running jobs whose agents are told to stop.
    pub stopping: Vec<String>,
}

pub async fn cancel_run(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CancelAnswer>), ApiError> {
    let run = find_run(&state, &id).await?;
    if run.status == RunStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "run {} has already completed ({})",
            run.id,
            run.conclusion.map(|c| c.as_str()).unwrap_or("no result")
        )));
    }
    let outcome = state
        .db
        .request_cancel(&CancelTarget::Run(run.id.clone()), now_ms())
        .await
        .map_err(store_error)?;
    tracing::info!(run = %run.id, by = %token.name, "run cancel requested");
    wake_after_cancel(&state, &outcome);
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAnswer {
            cancelled: outcome.completed.iter().map(|j| j.to_string()).collect(),
            stopping: outcome.signalled.iter().map(|j| j.to_string()).collect(),
        }),
    ))
}

/// Tells the scheduler (graphs to advance), held heartbeats (agents to stop) and live log
/// streams (jobs that ended) about a cancel.
pub fn wake_after_cancel(state: &AppState, outcome: &crate::store::CancelOutcome) {
    state.wake.scheduler.notify_one();
    state.wake.cancels.notify_waiters();
    for job in outcome.completed.iter().chain(&outcome.signalled) {
        crate::web::notify_log(job);
    }
}

/// `POST /api/v1/runs/{id}/rerun`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// Only the jobs that did not succeed (and those that need them); the successful ones keep
    /// their results and outputs.
    #[serde(default)]
    pub failed_only: bool,
}

pub async fn rerun_run(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RunDetail>), ApiError> {
    // The body is optional: no body is a full re-run.
    let request: RerunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RerunRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not a re-run request: {e}")))?
    };
    let failed_only = request.failed_only;
    let old = find_run(&state, &id).await?;
    let run = super::rerun::rerun(&state, &old, failed_only).await?;
    tracing::info!(run = %old.id, new = %run.id, failed_only, by = %token.name, "run started again");
    Ok((StatusCode::CREATED, Json(run_detail(&state, &run).await?)))
}
