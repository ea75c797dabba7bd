//! The job page: header (run, status, reason, agent, times, attempts), steps, annotations and
//! the log ([`log_view`](super::log_view)); plus the job's state as JSON, the log part of the
//! page alone, and the raw log.

use super::auth::{DataReader, Reader};
use super::display::{Badge, When, elapsed, ref_name, repository_path, short_sha};
use super::log_view::{self, AnnotationView, LogInput, LogView, Section};
use super::runs::job_detail;
use super::{Layout, PageError};
use crate::app::{AppState, now_ms};
use crate::store::{Job, JobId, JobStatus, Step, StoreError};
use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gantry_protocol::agent::JobEvent;
use serde::Serialize;
use std::sync::Arc;

/// Events read for a job page at most.
const MAX_EVENTS: u32 = 20_000;

/// A step as the page and the live script show it.
#[derive(Clone, Debug, Serialize)]
pub struct StepState {
    pub number: u32,
    pub name: String,
    pub badge: Badge,
    pub duration: String,
    pub log_start: Option<u64>,
    pub log_end: Option<u64>,
}

/// The job's state: the `/jobs/{id}/state` answer and the live stream's `state` and `end`
/// events.
#[derive(Clone, Debug, Serialize)]
pub struct JobState {
    pub status: &'static str,
    pub badge: Badge,
    /// Why it ended so, or what it waits for.
    pub detail: String,
    pub duration: String,
    /// The job completed: its log is whole.
    pub complete: bool,
    /// Bytes of log stored.
    pub log_size: u64,
    pub steps: Vec<StepState>,
}

impl JobState {
    pub fn new(job: &Job, steps: &[Step], now: i64) -> JobState {
        JobState {
            status: job.status.as_str(),
            badge: Badge::job(job.status, job.conclusion),
            detail: job_detail(job),
            duration: elapsed(job.started_ms, job.finished_ms, now),
            complete: job.status == JobStatus::Completed,
            log_size: job.log_stored,
            steps: steps
                .iter()
                .map(|step| StepState {
                    number: step.number,
                    name: step.name.clone(),
                    badge: Badge::step(step.status, step.conclusion),
                    duration: match (step.started_ms, step.finished_ms) {
                        (Some(start), end) => elapsed(Some(start), end, now),
                        _ => String::new(),
                    },
                    log_start: step.log_start,
                    log_end: step.log_end,
                })
                .collect(),
        }
    }

    /// Reads a job's state from the store.
    pub async fn load(state: &AppState, job_id: &JobId) -> Result<JobState, StoreError> {
        let job = state.db.get_job(job_id).await?;
        let steps = state.db.list_steps(job_id).await?;
        Ok(JobState::new(&job, &steps, now_ms()))
    }
}

/// The job's header.
pub struct JobHeader {
    pub name: String,
    pub badge: Badge,
    pub detail: String,
    pub duration: String,
    pub run_url: String,
    pub run_label: String,
    pub run_title: String,
    pub repository: String,
    pub repository_url: String,
    pub ref_name: String,
    pub sha_short: String,
    pub agent: Option<(String, String)>,
    pub labels: String,
    pub attempt: u32,
    /// Other attempts of this leg: (url, attempt, badge).
    pub attempts: Vec<(String, u32, Badge)>,
    pub queued: Option<When>,
    pub started: Option<When>,
    pub finished: Option<When>,
}

/// The log part of the page (also served alone, see [`job_sections`]).
pub struct LogPart {
    pub sections: Vec<Section>,
    pub annotations: Vec<AnnotationView>,
    /// Output before the rendered part is left out (a long log).
    pub clipped: bool,
    pub log_truncated: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    job: JobHeader,
    steps: Vec<StepState>,
    log: LogPart,
    /// The live script follows the log (the job has not completed).
    live: bool,
    /// Where the live stream starts.
    offset: u64,
    next_line: usize,
    live_url: String,
    state_url: String,
    sections_url: String,
    raw_url: String,
}

#[derive(Template)]
#[template(path = "job_log.html")]
struct LogFragment {
    log: LogPart,
}

/// The job's log view: the end of the log (at most [`log_view::WINDOW`] bytes, from a line
/// start), split by its steps and events.
async fn log_view(
    state: &AppState,
    job: &Job,
    steps: &[Step],
) -> Result<(LogView, bool), PageError> {
    let size = job.log_stored;
    let mut base = size.saturating_sub(log_view::WINDOW);
    let mut bytes = state.db.read_log(&job.id, base..size).await?;
    if base > 0 {
        // Start at a line.
        let skip = bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |at| at + 1);
        bytes.drain(..skip);
        base += skip as u64;
    }
    let events: Vec<JobEvent> = state
        .db
        .list_job_events(&job.id, 0, MAX_EVENTS)
        .await?
        .iter()
        .filter_map(|stored| serde_json::from_str(&stored.event).ok())
        .collect();
    let view = log_view::build(&LogInput {
        bytes: &bytes,
        base,
        steps,
        events: &events,
        complete: job.status == JobStatus::Completed,
    });
    Ok((view, base > 0))
}

fn job_id(id: String) -> JobId {
    JobId::from(id)
}

/// `GET /jobs/{id}`.
pub async fn show_job(
    State(state): State<Arc<AppState>>,
    access: Reader,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let job = state.db.get_job(&job_id(id)).await?;
    let run = state.db.get_run(&job.run_id).await?;
    let repository = state.db.get_repository(&run.repository_id).await?;
    let steps = state.db.list_steps(&job.id).await?;
    let agent = match &job.agent_id {
        Some(agent_id) => {
            let name = match state.db.find_agent(agent_id).await? {
                Some(agent) => agent.name,
                None => agent_id.to_string(),
            };
            Some((name, format!("/agents#{agent_id}")))
        }
        None => None,
    };
    let mut attempts: Vec<(String, u32, Badge)> = state
        .db
        .list_jobs(&run.id)
        .await?
        .into_iter()
        .filter(|other| other.key == job.key && other.leg == job.leg && other.id != job.id)
        .map(|other| {
            (
                format!("/jobs/{}", other.id),
                other.attempt,
                Badge::job(other.status, other.conclusion),
            )
        })
        .collect();
    attempts.sort_by_key(|(_, attempt, _)| *attempt);
    let (view, clipped) = log_view(&state, &job, &steps).await?;
    let now = now_ms();
    let job_state = JobState::new(&job, &steps, now);
    let workflow = if run.workflow_name.is_empty() {
        run.workflow_file.clone()
    } else {
        run.workflow_name.clone()
    };
    let header = JobHeader {
        name: job.name.clone(),
        badge: job_state.badge.clone(),
        detail: job_state.detail.clone(),
        duration: job_state.duration.clone(),
        run_url: format!("/runs/{}", run.id),
        run_label: format!("{workflow} #{}", run.number),
        run_title: run.title.clone(),
        repository_url: repository_path(&repository.name),
        repository: repository.name,
        ref_name: ref_name(&run.git_ref),
        sha_short: short_sha(&run.sha).to_owned(),
        agent,
        labels: job.labels.join(", "),
        attempt: job.attempt,
        attempts,
        queued: When::maybe(job.queued_ms, now),
        started: When::maybe(job.started_ms, now),
        finished: When::maybe(job.finished_ms, now),
    };
    let base = format!("/jobs/{}", job.id);
    let page = JobPage {
        layout: Layout::page(
            format!("{} · {}", job.name, header.run_label),
            "runs",
            &access,
        ),
        job: header,
        steps: job_state.steps,
        live: !job_state.complete,
        offset: view.end,
        next_line: view.next_line,
        log: LogPart {
            sections: view.sections,
            annotations: view.annotations,
            clipped,
            log_truncated: job.log_truncated,
        },
        live_url: format!("{base}/live"),
        state_url: format!("{base}/state"),
        sections_url: format!("{base}/sections"),
        raw_url: format!("{base}/log.txt"),
    };
    Ok(page.into_response())
}

/// `GET /jobs/{id}/state`: the job's status and steps as JSON.
pub async fn job_state(
    State(state): State<Arc<AppState>>,
    _access: DataReader,
    Path(id): Path<String>,
) -> Result<Json<JobState>, PageError> {
    Ok(Json(JobState::load(&state, &job_id(id)).await?))
}

/// `GET /jobs/{id}/sections`: the log part of the job page alone (HTML).
pub async fn job_sections(
    State(state): State<Arc<AppState>>,
    _access: DataReader,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let job = state.db.get_job(&job_id(id)).await?;
    let steps = state.db.list_steps(&job.id).await?;
    let (view, clipped) = log_view(&state, &job, &steps).await?;
    let fragment = LogFragment {
        log: LogPart {
            sections: view.sections,
            annotations: view.annotations,
            clipped,
            log_truncated: job.log_truncated,
        },
    };
    let html = fragment.render()?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

/// How much of the raw log is read from the store at a time.
const RAW_CHUNK: u64 = 1024 * 1024;

/// `GET /jobs/{id}/log.txt`: the stored log as plain text, streamed from the store.
pub async fn raw_log(
    State(state): State<Arc<AppState>>,
    _access: Reader,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let job = state.db.get_job(&job_id(id)).await?;
    let size = job.log_stored;
    let job_id = job.id.clone();
    let chunks = futures::stream::unfold(0u64, move |offset| {
        let state = state.clone();
        let job_id = job_id.clone();
        async move {
            if offset >= size {
                return None;
            }
            let end = (offset + RAW_CHUNK).min(size);
            match state.db.read_log(&job_id, offset..end).await {
                Ok(bytes) if !bytes.is_empty() => Some((Ok(bytes), end)),
                Ok(_) => None,
                Err(error) => Some((Err(std::io::Error::other(error.to_string())), size)),
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
