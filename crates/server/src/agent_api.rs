//! `/api/agent/*`: what agents call (docs/server.md, "Agent protocol"). Agents pull: they
//! register with a registration token, long-poll for a job, then heartbeat, send log chunks at
//! byte offsets, send events by sequence number and finish, each under the job's lease. Every
//! write is refused (410) under a lease that is not the job's current one, and nothing is
//! acknowledged before it is stored.

use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::secret::secret_aad;
use crate::store::{
    Agent, AgentId, AgentStatus, ClaimedJob, FinalReport, FinishError, FinishOutcome, JobFinish,
    JobId, LeaseId, LogAppendError, NewAgent, NewJobEvent, Step, StepStatus, StoreError,
    generate_token, hash_token,
};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gantry_protocol::JobSpec;
use gantry_protocol::agent::{
    EventsResponse, FinishRequest, FinishResponse, HeartbeatRequest, HeartbeatResponse,
    JobAssignment, JobEventKind, JobEventsRequest, JobSource, LogAppendQuery, LogAppendResponse,
    LogConflict, PollRequest, RegisterRequest, RegisterResponse, SequencedEvent,
};
use gantry_workflow::plan::SecretScope;
use indexmap::IndexMap;
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/agent/register", post(register))
        .route("/api/agent/poll", post(poll))
        .route("/api/agent/offline", post(offline))
        .route("/api/agent/jobs/{id}/heartbeat", post(heartbeat))
        .route("/api/agent/jobs/{id}/logs", post(append_logs))
        .route("/api/agent/jobs/{id}/events", post(append_events))
        .route("/api/agent/jobs/{id}/finish", post(finish))
}

/// The agent making a request, from its bearer credential.
pub struct AuthAgent(pub Agent);

impl FromRequestParts<Arc<AppState>> for AuthAgent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let agent = state
            .db
            .authenticate_agent(&hash_token(token))
            .await
            .map_err(store_error)?
            .ok_or(ApiError::Unauthorized)?;
        Ok(AuthAgent(agent))
    }
}

/// The bearer token of a request.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Refuses a job write from an agent other than the one the lease was issued to: a stolen
/// lease is useless with another agent's credential (403, whether or not the lease is current).
fn lease_holder(agent: &Agent, job_id: &JobId, lease: &LeaseId) -> Result<(), ApiError> {
    match lease.issued_to() {
        Some(holder) if holder != agent.id.as_str() => Err(ApiError::Forbidden(format!(
            "job {job_id} is not leased to agent {}",
            agent.id
        ))),
        _ => Ok(()),
    }
}

/// Store errors as HTTP answers.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
        StoreError::Conflict(message) => ApiError::Conflict(message),
        e if e.is_transient() => ApiError::Unavailable(e.to_string()),
        e => ApiError::Internal(anyhow::Error::new(e)),
    }
}

/// A job write under a lease that is not current.
fn stale() -> ApiError {
    ApiError::Gone("the lease is no longer the job's current one; stop working on this job".into())
}

fn lease_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) | StoreError::Gone(_) => stale(),
        other => store_error(other),
    }
}

async fn register(
    State(state): State<Arc<AppState>>,
    Json(body): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    if body.labels.iter().any(|l| l.trim().is_empty()) {
        return Err(ApiError::BadRequest("labels must not be empty".into()));
    }
    let credential = generate_token("gantry_agent_");
    let new = NewAgent {
        name: body.name.clone(),
        labels: body
            .labels
            .iter()
            .map(|l| l.trim().to_ascii_lowercase())
            .collect(),
        version: body.version.clone(),
        credential_hash: hash_token(&credential),
    };
    let now = now_ms();
    let configured =
        state.config.registration_token.as_deref().is_some_and(|t| {
            !t.is_empty() && constant_time_eq(t.as_bytes(), body.token.as_bytes())
        });
    let agent = if configured {
        state
            .db
            .insert_agent(&new, now)
            .await
            .map_err(store_error)?
    } else {
        match state
            .db
            .register_agent(&hash_token(&body.token), &new, now)
            .await
        {
            Ok(agent) => agent,
            Err(StoreError::NotFound { .. }) | Err(StoreError::Conflict(_)) => {
                return Err(ApiError::Unauthorized);
            }
            Err(e) => return Err(store_error(e)),
        }
    };
    tracing::info!(agent = %agent.id, name = %agent.name, labels = ?agent.labels, "agent registered");
    Ok(Json(RegisterResponse {
        agent_id: agent.id.to_string(),
        credential,
    }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn poll(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    body: Option<Json<PollRequest>>,
) -> Result<Response, ApiError> {
    let running = body.map(|b| b.running).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + state.config.poll_hold;
    // The first claim also records that the agent was seen, and whether it is busy.
    let mut touch = Some(if running > 0 {
        AgentStatus::Busy
    } else {
        AgentStatus::Idle
    });
    loop {
        let woken = state.wake.jobs.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let lease_ms = i64::try_from(state.config.lease.as_millis()).unwrap_or(30_000);
        if let Some(claimed) = state
            .db
            .poll_claim(&agent.id, &agent.labels, touch.take(), lease_ms, now_ms())
            .await
            .map_err(store_error)?
        {
            state.wake.scheduler.notify_one();
            let assignment = assignment(&state, claimed).await?;
            return Ok(Json(assignment).into_response());
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(StatusCode::NO_CONTENT.into_response()),
            _ = state.shutdown.cancelled() => return Ok(StatusCode::NO_CONTENT.into_response()),
        }
    }
}

/// An agent stopping (drained, or stopped): shown as offline at once instead of after its
/// silence. Its next poll, after a restart, shows it again.
async fn offline(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .touch_agent(&agent.id, AgentStatus::Offline, now_ms())
        .await
        .map_err(store_error)?;
    tracing::info!(agent = %agent.id, name = %agent.name, "agent signed off");
    Ok(StatusCode::NO_CONTENT)
}

/// What the agent gets for a claimed job: the spec with the run's numbers, the secrets its
/// scope allows (none for untrusted runs), and where to fetch the code.
async fn assignment(state: &AppState, claimed: ClaimedJob) -> Result<JobAssignment, ApiError> {
    let job = &claimed.job;
    let mut spec: JobSpec = serde_json::from_str(&job.spec)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("job {} spec unreadable: {e}", job.id)))?;
    if let Some(github) = spec.github.as_object_mut() {
        github.insert(
            "run_id".into(),
            serde_json::Value::String(job.run_id.to_string()),
        );
        github.insert(
            "run_number".into(),
            serde_json::Value::String(claimed.source.run_number.to_string()),
        );
        github.insert(
            "run_attempt".into(),
            serde_json::Value::String(claimed.source.run_attempt.to_string()),
        );
    }
    let secrets = if claimed.source.trusted {
        job_secrets(state, &claimed).await?
    } else {
        IndexMap::new()
    };
    // A fork's commit is fetched from the fork (only untrusted runs come from forks).
    let fork_url = if claimed.source.trusted {
        None
    } else {
        let run = state.db.get_run(&job.run_id).await.map_err(store_error)?;
        let context: serde_json::Value = serde_json::from_str(&run.context).unwrap_or_default();
        context
            .pointer("/payload/pull_request/head/repo/clone_url")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(JobAssignment {
        job_id: job.id.to_string(),
        lease_id: claimed.lease_id.to_string(),
        lease_expires_ms: claimed.lease_expires_ms,
        spec,
        secrets,
        source: JobSource {
            url: fork_url.unwrap_or_else(|| claimed.source.clone_url.clone()),
            sha: claimed.source.sha.clone(),
            git_ref: Some(claimed.source.git_ref.clone()).filter(|r| !r.is_empty()),
        },
        heartbeat_interval_ms: u64::try_from(state.config.heartbeat.as_millis()).unwrap_or(10_000),
        lease_ms: u64::try_from(state.config.lease.as_millis()).unwrap_or(30_000),
    })
}

/// The secret values a job may read: repository secrets over global ones, narrowed by its
/// scope (reusable-workflow `secrets:` mappings).
async fn job_secrets(
    state: &AppState,
    claimed: &ClaimedJob,
) -> Result<IndexMap<String, String>, ApiError> {
    let repo_id = &claimed.source.repository_id;
    let mut values: IndexMap<String, String> = IndexMap::new();
    let global = state
        .db
        .list_secrets_for_repository(repo_id)
        .await
        .map_err(store_error)?;
    for secret in global {
        let aad = secret_aad(
            secret.repository_id.as_ref().map(|r| r.as_str()),
            &secret.name,
        );
        let plain = state
            .keys
            .open(&aad, &secret.sealed)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("secret {}: {e}", secret.name)))?;
        values.insert(
            secret.name.clone(),
            String::from_utf8_lossy(&plain).into_owned(),
        );
    }
    let scope: SecretScope = serde_json::from_str(&claimed.job.secret_scope).unwrap_or_default();
    scope
        .resolve(&values)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("job {}: {e}", claimed.job.id)))
}

async fn heartbeat(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let job_id = JobId::from(id);
    let lease = LeaseId::from(body.lease_id);
    lease_holder(&agent, &job_id, &lease)?;
    let lease_ms = i64::try_from(state.config.lease.as_millis()).unwrap_or(30_000);
    let status = if body.draining {
        AgentStatus::Draining
    } else {
        AgentStatus::Busy
    };
    let _ = state.db.touch_agent(&agent.id, status, now_ms()).await;
    let mut answer = state
        .db
        .renew_lease(&job_id, &lease, lease_ms, now_ms())
        .await
        .map_err(lease_error)?;
    // Held until a cancel arrives (so it reaches the agent at once) or most of an interval.
    let hold = state.config.heartbeat.mul_f64(0.8);
    let deadline = tokio::time::Instant::now() + hold;
    while !answer.cancel_requested {
        let woken = state.wake.cancels.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = state.shutdown.cancelled() => break,
        }
        match state.db.find_job(&job_id).await {
            Ok(Some(job)) if job.cancel_requested => {
                answer.cancel_requested = true;
            }
            _ => {}
        }
    }
    Ok(Json(HeartbeatResponse {
        lease_expires_ms: answer.expires_ms,
        cancel: answer.cancel_requested,
    }))
}

async fn append_logs(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<String>,
    Query(query): Query<LogAppendQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let job_id = JobId::from(id);
    let lease = LeaseId::from(query.lease);
    lease_holder(&agent, &job_id, &lease)?;
    match state
        .db
        .append_log_chunk(&job_id, &lease, query.offset, &body)
        .await
    {
        Ok(appended) => {
            state.wake.cancels.notify_waiters();
            crate::web::notify_log(&job_id);
            Ok(Json(LogAppendResponse {
                next_offset: appended.next_offset,
                cancel: appended.cancel_requested,
            })
            .into_response())
        }
        Err(LogAppendError::Gap { expected }) => Ok((
            StatusCode::CONFLICT,
            Json(LogConflict {
                expected_offset: expected,
            }),
        )
            .into_response()),
        Err(LogAppendError::Conflict { offset }) => Err(ApiError::Conflict(format!(
            "the chunk differs from the stored log at offset {offset}"
        ))),
        Err(LogAppendError::StaleLease) => Err(stale()),
        Err(LogAppendError::Store(e)) => Err(lease_error(e)),
    }
}

async fn append_events(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<JobEventsRequest>,
) -> Result<Json<EventsResponse>, ApiError> {
    let job_id = JobId::from(id);
    let lease = LeaseId::from(body.lease_id.clone());
    lease_holder(&agent, &job_id, &lease)?;
    let (events, steps) = event_rows(&body.events)?;
    let appended = state
        .db
        .record_job_events(&job_id, &lease, &events, &steps, now_ms())
        .await
        .map_err(lease_error)?;
    crate::web::notify_log(&job_id);
    Ok(Json(EventsResponse {
        next_seq: appended.next_seq,
        cancel: appended.cancel_requested,
    }))
}

/// Agent events as stored: each event's JSON, and the steps they start or end.
fn event_rows(sequenced: &[SequencedEvent]) -> Result<(Vec<NewJobEvent>, Vec<Step>), ApiError> {
    let mut events = Vec::with_capacity(sequenced.len());
    let mut steps = Vec::new();
    for sequenced in sequenced {
        let event = &sequenced.event;
        let text = serde_json::to_string(event).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        events.push(NewJobEvent {
            seq: sequenced.seq,
            event: text,
        });
        match &event.kind {
            JobEventKind::StepStarted { step, name } => steps.push(Step {
                number: u32::try_from(*step + 1).unwrap_or(u32::MAX),
                name: name.clone(),
                status: StepStatus::Running,
                outcome: None,
                conclusion: None,
                log_start: Some(event.log_offset),
                log_end: None,
                started_ms: Some(event.at_ms),
                finished_ms: None,
            }),
            JobEventKind::StepFinished {
                step,
                name,
                outcome,
                conclusion,
                duration_ms,
            } => steps.push(Step {
                number: u32::try_from(*step + 1).unwrap_or(u32::MAX),
                name: name.clone(),
                status: StepStatus::Completed,
                outcome: Some(*outcome),
                conclusion: Some(*conclusion),
                log_start: None,
                log_end: Some(event.log_offset),
                started_ms: Some(event.at_ms - i64::try_from(*duration_ms).unwrap_or(0)),
                finished_ms: Some(event.at_ms),
            }),
            _ => {}
        }
    }
    Ok((events, steps))
}

async fn finish(
    State(state): State<Arc<AppState>>,
    AuthAgent(agent): AuthAgent,
    Path(id): Path<String>,
    Json(body): Json<FinishRequest>,
) -> Result<Response, ApiError> {
    let job_id = JobId::from(id);
    let lease = LeaseId::from(body.lease_id.clone());
    lease_holder(&agent, &job_id, &lease)?;
    let mut reason = body.reason.clone();
    if body.agent_stop && reason.is_none() {
        reason = Some(gantry_protocol::FailureReason::Cancelled);
    }
    let finish = JobFinish {
        conclusion: body.conclusion,
        reason,
        outputs: body.outputs.clone(),
        log_size: body.log_size,
    };
    let (events, steps) = event_rows(&body.events)?;
    let report = FinalReport {
        log_tail: body
            .log_tail
            .map(|tail| (tail.offset, tail.text.into_bytes())),
        events,
        steps,
    };
    match state
        .db
        .finish_job_with(&job_id, &lease, &report, &finish, now_ms())
        .await
    {
        Ok(outcome) => {
            if let FinishOutcome::Recorded(job) = &outcome {
                tracing::info!(job = %job.id, agent = %agent.id, conclusion = ?job.conclusion, "job finished");
                // A job of an agent stopped by SIGQUIT is tried again elsewhere.
                if body.agent_stop && job.attempt <= state.config.lost_job_retries {
                    let _ = state.db.insert_retry_attempt(&job.id, now_ms()).await;
                    state.wake.jobs.notify_waiters();
                }
            }
            state.wake.scheduler.notify_one();
            crate::web::notify_log(&job_id);
            Ok(Json(FinishResponse {}).into_response())
        }
        Err(FinishError::LogSizeMismatch { stored, .. }) => Ok((
            StatusCode::CONFLICT,
            Json(LogConflict {
                expected_offset: stored,
            }),
        )
            .into_response()),
        Err(FinishError::LogConflict { offset }) => Err(ApiError::Conflict(format!(
            "the log sent with the result differs from the stored log at offset {offset}"
        ))),
        Err(FinishError::StaleLease) => Err(stale()),
        Err(FinishError::Store(e)) => Err(lease_error(e)),
    }
}

/// An agent id from its text form.
pub fn agent_id(text: &str) -> AgentId {
    AgentId::from(text.to_owned())
}
