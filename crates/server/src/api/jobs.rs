//! `/api/v1/jobs/{id}`: one job (one attempt of one leg) with its steps and annotations, and
//! cancelling it. Its log is served by [`super::logs`].

use super::auth::{Reader, Writer};
use super::runs::{CancelAnswer, find_run, repository_name, wake_after_cancel};
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::store::{CancelTarget, Job, JobId, JobStatus, Step};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gantry_protocol::agent::{JobEvent, JobEventKind};
use gantry_protocol::{Annotation, Conclusion, FailureReason};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How many stored events a job answer looks through for annotations.
const EVENT_LIMIT: u32 = 5_000;

/// A job row as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobView {
    pub id: String,
    pub run_id: String,
    /// The job's key in the run (`build`, `call/test`).
    pub key: String,
    /// The matrix leg (0 without a matrix).
    pub leg: u32,
    /// 1, or more when the job was tried again after its agent was lost.
    pub attempt: u32,
    pub name: String,
    /// `waiting`, `queued`, `running` or `completed`.
    pub status: String,
    pub conclusion: Option<Conclusion>,
    pub reason: Option<FailureReason>,
    /// Agent labels the job needs.
    pub labels: Vec<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub cancel_requested: bool,
    pub created_ms: i64,
    pub queued_ms: Option<i64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Log bytes stored (what `/logs` serves).
    pub log_size: u64,
    pub log_truncated: bool,
}

impl JobView {
    pub fn new(job: &Job, agent_name: Option<&String>) -> JobView {
        JobView {
            id: job.id.to_string(),
            run_id: job.run_id.to_string(),
            key: job.key.clone(),
            leg: job.leg,
            attempt: job.attempt,
            name: job.name.clone(),
            status: job.status.as_str().to_owned(),
            conclusion: job.conclusion,
            reason: job.reason.clone(),
            labels: job.labels.clone(),
            agent_id: job.agent_id.as_ref().map(|a| a.to_string()),
            agent_name: agent_name.cloned(),
            cancel_requested: job.cancel_requested,
            created_ms: job.created_ms,
            queued_ms: job.queued_ms,
            started_ms: job.started_ms,
            finished_ms: job.finished_ms,
            log_size: job.log_stored,
            log_truncated: job.log_truncated,
        }
    }
}

/// A step as the agent reported it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepView {
    pub number: u32,
    pub name: String,
    /// `pending`, `running` or `completed`.
    pub status: String,
    pub outcome: Option<Conclusion>,
    pub conclusion: Option<Conclusion>,
    /// The step's part of the log: bytes `[log_start, log_end)`.
    pub log_start: Option<u64>,
    pub log_end: Option<u64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl StepView {
    pub fn new(step: &Step) -> StepView {
        StepView {
            number: step.number,
            name: step.name.clone(),
            status: step.status.as_str().to_owned(),
            outcome: step.outcome,
            conclusion: step.conclusion,
            log_start: step.log_start,
            log_end: step.log_end,
            started_ms: step.started_ms,
            finished_ms: step.finished_ms,
        }
    }
}

/// An `::error`/`::warning`/`::notice` of the job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AnnotationView {
    /// 1-based step number; absent for the job itself.
    pub step: Option<usize>,
    /// Where in the log it was reported.
    pub log_offset: u64,
    #[serde(flatten)]
    pub annotation: Annotation,
}

/// The run a job belongs to, in short.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobRun {
    pub id: String,
    pub number: i64,
    pub repository: String,
    pub workflow_name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobView,
    pub run: JobRun,
    pub steps: Vec<StepView>,
    pub annotations: Vec<AnnotationView>,
}

/// The job with this id; 404 when there is none.
pub async fn find_job(state: &AppState, id: &str) -> Result<Job, ApiError> {
    state
        .db
        .find_job(&JobId::from(id))
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

pub async fn get_job(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    let job = find_job(&state, &id).await?;
    let run = find_run(&state, job.run_id.as_str()).await?;
    let repository = repository_name(&state, &run).await?;
    let agent_name = match &job.agent_id {
        Some(agent) => state
            .db
            .find_agent(agent)
            .await
            .map_err(store_error)?
            .map(|a| a.name),
        None => None,
    };
    let steps = state.db.list_steps(&job.id).await.map_err(store_error)?;
    let events = state
        .db
        .list_job_events(&job.id, 0, EVENT_LIMIT)
        .await
        .map_err(store_error)?;
    let annotations = events
        .iter()
        .filter_map(|stored| serde_json::from_str::<JobEvent>(&stored.event).ok())
        .filter_map(|event| match event.kind {
            JobEventKind::Annotation { step, annotation } => Some(AnnotationView {
                step: step.map(|s| s + 1),
                log_offset: event.log_offset,
                annotation,
            }),
            _ => None,
        })
        .collect();
    Ok(Json(JobDetail {
        job: JobView::new(&job, agent_name.as_ref()),
        run: JobRun {
            id: run.id.to_string(),
            number: run.number,
            repository,
            workflow_name: run.workflow_name.clone(),
        },
        steps: steps.iter().map(StepView::new).collect(),
        annotations,
    }))
}

pub async fn cancel_job(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CancelAnswer>), ApiError> {
    let job = find_job(&state, &id).await?;
    if job.status == JobStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "job {} has already completed ({})",
            job.id,
            job.conclusion.map(|c| c.as_str()).unwrap_or("no result")
        )));
    }
    let outcome = state
        .db
        .request_cancel(&CancelTarget::Job(job.id.clone()), now_ms())
        .await
        .map_err(store_error)?;
    tracing::info!(job = %job.id, by = %token.name, "job cancel requested");
    wake_after_cancel(&state, &outcome);
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAnswer {
            cancelled: outcome.completed.iter().map(|j| j.to_string()).collect(),
            stopping: outcome.signalled.iter().map(|j| j.to_string()).collect(),
        }),
    ))
}
