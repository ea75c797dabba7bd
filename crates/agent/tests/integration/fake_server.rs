//! A fake Gantry server for the agent: axum on 127.0.0.1:0, in-process. It stores what a real
//! server stores (log bytes by offset, events by seq, the finish), checks what a real server
//! checks (bearer credential, lease, offsets), records every call, and misbehaves as a test's
//! script says.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gantry_protocol::agent::{
    ErrorBody, EventsResponse, FinishRequest, HeartbeatRequest, HeartbeatResponse, JobAssignment,
    JobEvent, JobEventsRequest, LogAppendQuery, LogAppendResponse, LogConflict, RegisterRequest,
    RegisterResponse, SequencedEvent,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const REGISTRATION_TOKEN: &str = "reg-token";
pub const CREDENTIAL: &str = "cred-abc123";

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Call {
    pub kind: &'static str,
    pub job_id: Option<String>,
    pub at: Instant,
    pub status: u16,
}

/// What the server holds of one job.
#[derive(Clone, Debug, Default)]
pub struct JobRecord {
    pub lease_id: String,
    pub log: Vec<u8>,
    pub events: BTreeMap<u64, JobEvent>,
    /// Every finish request that was acknowledged (repeats included).
    pub finishes: Vec<FinishRequest>,
    /// Finish requests that carried the log's end.
    pub tails: u32,
    pub heartbeats: u32,
    /// Heartbeats that said the agent is draining.
    pub draining_heartbeats: u32,
    /// Anything a correct agent never causes (bytes resent with other content...).
    pub violations: Vec<String>,
    /// Answer `cancel: true` from now on.
    pub cancel: bool,
    /// Answer 410 to heartbeats from now on.
    pub heartbeat_gone: bool,
}

/// How the server misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Answer 503 to the next N requests of a kind (`poll`, `heartbeat`, `logs`, `events`,
    /// `finish`).
    pub fail_next: HashMap<&'static str, u32>,
    /// Store at most this many bytes of each log request.
    pub accept_at_most: Option<usize>,
    /// Once the stored log reaches this size, forget its second half and answer 409 (once).
    pub rewind_at: Option<u64>,
    /// Answer 413 to a finish request carrying log bytes or events.
    pub refuse_large_finish: bool,
    /// Answer 409 to the first finish after forgetting the log's last N bytes.
    pub lose_tail_before_finish: Option<u64>,
    /// Refuse every log request with 400.
    pub refuse_logs: bool,
    /// How long a poll is held when there is no job.
    pub poll_hold: Duration,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub calls: Vec<Call>,
    pub registrations: Vec<RegisterRequest>,
    pub queue: VecDeque<JobAssignment>,
    pub jobs: HashMap<String, JobRecord>,
    /// Every request body received (log bytes and JSON), for the secret check.
    pub bodies: Vec<Vec<u8>>,
    pub script: Script,
}

#[derive(Debug, Default)]
pub struct ServerState {
    inner: Mutex<Inner>,
    queued: Notify,
    changed: Notify,
}

impl ServerState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake server.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
}

impl FakeServer {
    pub async fn start(script: Script) -> FakeServer {
        let state = Arc::new(ServerState::default());
        state.lock().script = script;
        let app = Router::new()
            .route("/api/agent/register", post(register))
            .route("/api/agent/poll", post(poll))
            .route("/api/agent/jobs/{id}/heartbeat", post(heartbeat))
            .route("/api/agent/jobs/{id}/logs", post(logs))
            .route("/api/agent/jobs/{id}/events", post(events))
            .route("/api/agent/jobs/{id}/finish", post(finish))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a job for the next poll.
    pub fn enqueue(&self, assignment: JobAssignment) {
        self.state.lock().queue.push_back(assignment);
        self.state.queued.notify_waiters();
    }

    pub fn job(&self, id: &str) -> JobRecord {
        self.state.lock().jobs.get(id).cloned().unwrap_or_default()
    }

    pub fn update_job(&self, id: &str, f: impl FnOnce(&mut JobRecord)) {
        if let Some(job) = self.state.lock().jobs.get_mut(id) {
            f(job);
        }
    }

    pub fn calls(&self, kind: &str) -> Vec<Call> {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.kind == kind)
            .cloned()
            .collect()
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.state.lock().script);
    }

    /// Waits until `check` holds of the server's state (checked after every request).
    pub async fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&Inner) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.state.changed.notified();
            if check(&self.state.lock()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out waiting for {what}");
            }
        }
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = ErrorBody {
        error: code.to_owned(),
        message: format!("fake server: {code}"),
    };
    (status, axum::Json(body)).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {CREDENTIAL}"))
}

/// Records a call, with the status it got, and wakes waiters.
fn record(
    state: &ServerState,
    inner: &mut Inner,
    kind: &'static str,
    job: Option<&str>,
    status: u16,
) {
    inner.calls.push(Call {
        kind,
        job_id: job.map(str::to_owned),
        at: Instant::now(),
        status,
    });
    state.changed.notify_waiters();
}

/// The common checks of a job request: credential, scripted failure, known job, lease. The
/// answer to send instead when one fails.
fn check_job_request(
    state: &ServerState,
    inner: &mut Inner,
    kind: &'static str,
    id: &str,
    headers: &HeaderMap,
    lease: &str,
) -> Option<Response> {
    if !authorized(headers) {
        record(state, inner, kind, Some(id), 401);
        return Some(error(StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    if let Some(n) = inner.script.fail_next.get_mut(kind)
        && *n > 0
    {
        *n -= 1;
        record(state, inner, kind, Some(id), 503);
        return Some(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    }
    let Some(job) = inner.jobs.get(id) else {
        record(state, inner, kind, Some(id), 404);
        return Some(error(StatusCode::NOT_FOUND, "not_found"));
    };
    if job.lease_id != lease {
        record(state, inner, kind, Some(id), 410);
        return Some(error(StatusCode::GONE, "lease_gone"));
    }
    None
}

async fn register(
    State(state): State<Arc<ServerState>>,
    axum::Json(body): axum::Json<RegisterRequest>,
) -> Response {
    let mut inner = state.lock();
    inner
        .bodies
        .push(serde_json::to_vec(&body).unwrap_or_default());
    if body.token != REGISTRATION_TOKEN {
        record(&state, &mut inner, "register", None, 401);
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    inner.registrations.push(body);
    record(&state, &mut inner, "register", None, 200);
    axum::Json(RegisterResponse {
        agent_id: "agt_test".into(),
        credential: CREDENTIAL.into(),
    })
    .into_response()
}

async fn poll(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let hold = {
        let mut inner = state.lock();
        if !authorized(&headers) {
            record(&state, &mut inner, "poll", None, 401);
            return error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        if let Some(n) = inner.script.fail_next.get_mut("poll")
            && *n > 0
        {
            *n -= 1;
            record(&state, &mut inner, "poll", None, 503);
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        }
        record(&state, &mut inner, "poll_start", None, 0);
        inner.script.poll_hold
    };
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let queued = state.queued.notified();
        {
            let mut inner = state.lock();
            if let Some(assignment) = inner.queue.pop_front() {
                inner.jobs.insert(
                    assignment.job_id.clone(),
                    JobRecord {
                        lease_id: assignment.lease_id.clone(),
                        ..JobRecord::default()
                    },
                );
                let id = assignment.job_id.clone();
                record(&state, &mut inner, "poll", Some(&id), 200);
                return axum::Json(assignment).into_response();
            }
        }
        if tokio::time::timeout_at(deadline, queued).await.is_err() {
            let mut inner = state.lock();
            record(&state, &mut inner, "poll", None, 204);
            return StatusCode::NO_CONTENT.into_response();
        }
    }
}

async fn heartbeat(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<HeartbeatRequest>,
) -> Response {
    let mut inner = state.lock();
    if let Some(response) = check_job_request(
        &state,
        &mut inner,
        "heartbeat",
        &id,
        &headers,
        &body.lease_id,
    ) {
        return response;
    }
    let job = inner.jobs.get_mut(&id).expect("checked");
    if job.heartbeat_gone {
        record(&state, &mut inner, "heartbeat", Some(&id), 410);
        return error(StatusCode::GONE, "lease_gone");
    }
    job.heartbeats += 1;
    if body.draining {
        job.draining_heartbeats += 1;
    }
    let cancel = job.cancel;
    record(&state, &mut inner, "heartbeat", Some(&id), 200);
    axum::Json(HeartbeatResponse {
        lease_expires_ms: 0,
        cancel,
    })
    .into_response()
}

async fn logs(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    Query(query): Query<LogAppendQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock();
    inner.bodies.push(body.to_vec());
    if let Some(response) =
        check_job_request(&state, &mut inner, "logs", &id, &headers, &query.lease)
    {
        return response;
    }
    let script = inner.script.clone();
    if script.refuse_logs {
        record(&state, &mut inner, "logs", Some(&id), 400);
        return error(StatusCode::BAD_REQUEST, "bad_request");
    }
    let job = inner.jobs.get_mut(&id).expect("checked");
    let stored = job.log.len() as u64;
    if query.offset > stored {
        record(&state, &mut inner, "logs", Some(&id), 409);
        return conflict(stored);
    }
    // Bytes already stored must be the same bytes.
    let start = usize::try_from(query.offset).expect("small");
    let overlap = (job.log.len() - start).min(body.len());
    if job.log[start..start + overlap] != body[..overlap] {
        job.violations
            .push(format!("bytes at {start} resent with other content"));
    }
    let take = script
        .accept_at_most
        .map_or(body.len(), |n| n.min(body.len()));
    if take > overlap {
        job.log.extend_from_slice(&body[overlap..take]);
    }
    if let Some(at) = script.rewind_at
        && job.log.len() as u64 >= at
    {
        let keep = job.log.len() / 2;
        job.log.truncate(keep);
        inner.script.rewind_at = None;
        record(&state, &mut inner, "logs", Some(&id), 409);
        return conflict(keep as u64);
    }
    let job = inner.jobs.get_mut(&id).expect("checked");
    let answer = LogAppendResponse {
        next_offset: job.log.len() as u64,
        cancel: job.cancel,
    };
    record(&state, &mut inner, "logs", Some(&id), 200);
    axum::Json(answer).into_response()
}

fn conflict(expected_offset: u64) -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(LogConflict { expected_offset }),
    )
        .into_response()
}

async fn events(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<JobEventsRequest>,
) -> Response {
    let mut inner = state.lock();
    inner
        .bodies
        .push(serde_json::to_vec(&body).unwrap_or_default());
    if let Some(response) =
        check_job_request(&state, &mut inner, "events", &id, &headers, &body.lease_id)
    {
        return response;
    }
    let job = inner.jobs.get_mut(&id).expect("checked");
    store_events(job, body.events);
    let answer = EventsResponse {
        next_seq: job.events.len() as u64,
        cancel: job.cancel,
    };
    record(&state, &mut inner, "events", Some(&id), 200);
    axum::Json(answer).into_response()
}

fn store_events(job: &mut JobRecord, events: Vec<SequencedEvent>) {
    for event in events {
        let next = job.events.len() as u64;
        if event.seq < next {
            if job.events.get(&event.seq) != Some(&event.event) {
                job.violations
                    .push(format!("event {} resent with other content", event.seq));
            }
        } else if event.seq == next {
            job.events.insert(event.seq, event.event);
        }
    }
}

async fn finish(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<FinishRequest>,
) -> Response {
    let mut inner = state.lock();
    inner
        .bodies
        .push(serde_json::to_vec(&body).unwrap_or_default());
    if let Some(response) =
        check_job_request(&state, &mut inner, "finish", &id, &headers, &body.lease_id)
    {
        return response;
    }
    if inner.script.refuse_large_finish && (body.log_tail.is_some() || !body.events.is_empty()) {
        record(&state, &mut inner, "finish", Some(&id), 413);
        return error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    let lose = inner.script.lose_tail_before_finish.take();
    let job = inner.jobs.get_mut(&id).expect("checked");
    if let Some(n) = lose {
        let keep = job
            .log
            .len()
            .saturating_sub(usize::try_from(n).expect("small"));
        job.log.truncate(keep);
    }
    // The log's end and the last events, stored with the result (all or nothing).
    let mut log = job.log.clone();
    if let Some(tail) = &body.log_tail {
        if tail.offset > log.len() as u64 {
            let stored = log.len() as u64;
            record(&state, &mut inner, "finish", Some(&id), 409);
            return conflict(stored);
        }
        let start = usize::try_from(tail.offset).expect("small");
        let bytes = tail.text.as_bytes();
        let overlap = (log.len() - start).min(bytes.len());
        if log[start..start + overlap] != bytes[..overlap] {
            job.violations
                .push(format!("bytes at {start} resent with other content"));
        }
        log.extend_from_slice(&bytes[overlap..]);
        job.tails += 1;
    }
    let stored = log.len() as u64;
    if body.log_size != stored {
        record(&state, &mut inner, "finish", Some(&id), 409);
        return conflict(stored);
    }
    job.log = log;
    store_events(job, body.events.clone());
    job.finishes.push(body);
    record(&state, &mut inner, "finish", Some(&id), 200);
    axum::Json(serde_json::json!({})).into_response()
}
