//! The agent protocol: the JSON bodies agents and the server exchange under `/api/agent/*`
//! (docs/server.md, "Agent protocol"). Types only; the server's `agent_api` and the agent's
//! client both use exactly these.
//!
//! | request | body | answer |
//! | --- | --- | --- |
//! | `POST /api/agent/register` | [`RegisterRequest`] | [`RegisterResponse`] |
//! | `POST /api/agent/poll` | [`PollRequest`] | 200 [`JobAssignment`] or 204 |
//! | `POST /api/agent/jobs/{id}/heartbeat` | [`HeartbeatRequest`] | [`HeartbeatResponse`]; 410 |
//! | `POST /api/agent/jobs/{id}/logs?lease=L&offset=N` ([`LogAppendQuery`]) | raw bytes | [`LogAppendResponse`]; 409 [`LogConflict`]; 410 |
//! | `POST /api/agent/jobs/{id}/events` | [`JobEventsRequest`] | [`EventsResponse`]; 410 |
//! | `POST /api/agent/jobs/{id}/finish` | [`FinishRequest`] | 200 [`FinishResponse`]; 409 [`LogConflict`]; 410 |
//!
//! Every request after registration carries `Authorization: Bearer <credential>`. Errors other
//! than the 409s above carry an [`ErrorBody`]. Status codes the agent acts on:
//!
//! - 5xx, 429, and no answer at all: transient; the agent retries with backoff.
//! - 401: the credential is unknown or revoked; the agent stops.
//! - 409 on logs and finish: the server's log size differs from the agent's idea of it; the
//!   body says where the server is ([`LogConflict::expected_offset`]).
//! - 410 on any job request: the lease is not the job's current one (the job was finished,
//!   cancelled and reaped, or reassigned); the agent stops working on that job at once and
//!   reports nothing more for it.
//! - any other 4xx: the request itself is wrong; never retried.
//!
//! Compatibility: fields added later are `#[serde(default)]`, and both sides ignore fields
//! they do not know, so an older agent keeps working with a newer server.

use crate::{Annotation, Conclusion, FailureReason, JobSpec};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The protocol version this crate describes, sent at registration.
pub const PROTOCOL_VERSION: u32 = 1;

/// `POST /api/agent/register`: exchanges a registration token for a credential of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The registration token an administrator created (`registration_tokens`).
    pub token: String,
    /// A display name for the agent (by default the host name). Not unique.
    pub name: String,
    /// What the agent offers to `runs-on` (`linux`, `x64`, `gpu`...), matched through the
    /// server's label map.
    pub labels: Vec<String>,
    /// The agent's version (the `gantry` crate version).
    pub version: String,
    /// Jobs the agent runs at once; informational.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// [`PROTOCOL_VERSION`] of the agent.
    #[serde(default = "one")]
    pub protocol: u32,
}

fn one() -> u32 {
    1
}

/// The answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The agent's id (`agt_...`).
    pub agent_id: String,
    /// The agent's secret credential, sent as `Authorization: Bearer <credential>` on every
    /// later request. Shown once: the server keeps only its hash; the agent stores it in its
    /// state directory (mode 0600) and reuses it across restarts.
    pub credential: String,
}

/// `POST /api/agent/poll`: asks for one job. The server holds the request up to 30 s and
/// answers 200 with a [`JobAssignment`] or 204 when nothing came. The agent polls only while
/// it has a free slot, so a poll is also a statement that the agent can take a job now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRequest {
    /// Jobs the agent is running as it polls (for the agents page).
    #[serde(default)]
    pub running: u32,
}

/// A job handed to an agent: the 200 answer to a poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobAssignment {
    /// The job's id (`job_...`), the `{id}` of every job request.
    pub job_id: String,
    /// This assignment's lease. Every job request carries it; the server refuses (410) writes
    /// under a lease that is not the job's current one.
    pub lease_id: String,
    /// When the lease runs out unless renewed, ms since the epoch (server clock; the agent
    /// only uses [`JobAssignment::lease_ms`], never compares clocks).
    pub lease_expires_ms: i64,
    /// What to run: steps with their templates still unevaluated, and the contexts known
    /// at planning time.
    pub spec: JobSpec,
    /// Secret values by name, only those the job may see (none for a fork's pull request).
    /// The agent masks them in every byte it sends back.
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
    /// Where the job's code comes from.
    pub source: JobSource,
    /// How often to send a heartbeat, ms.
    pub heartbeat_interval_ms: u64,
    /// How long a lease lasts after each heartbeat, ms. The job is taken away from the agent
    /// (`agent_lost`) when no heartbeat arrives for that long.
    pub lease_ms: u64,
}

/// The commit a job runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSource {
    /// A URL `git fetch` understands (`https://...`, `file:///...`), reachable from the agent.
    pub url: String,
    /// The commit to check out (full hex sha).
    pub sha: String,
    /// The run's full ref (`refs/heads/main`, `refs/pull/3/merge`), when it has one.
    #[serde(default)]
    pub git_ref: Option<String>,
}

/// `POST /api/agent/jobs/{id}/heartbeat`: renews the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// The assignment's lease.
    pub lease_id: String,
    /// The agent is draining (SIGTERM): it finishes its jobs and takes no new ones.
    #[serde(default)]
    pub draining: bool,
}

/// The answer to a heartbeat (410 instead when the lease is gone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The renewed lease's end, ms since the epoch (server clock).
    pub lease_expires_ms: i64,
    /// Cancellation was requested: the agent cancels the job (the running step is
    /// interrupted, `always()` steps still run) and finishes it as it ends.
    #[serde(default)]
    pub cancel: bool,
}

/// The query of `POST /api/agent/jobs/{id}/logs?lease=L&offset=N`; the body is raw log bytes
/// (UTF-8 text, masked) that start at byte `offset` of the job's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAppendQuery {
    /// The assignment's lease.
    pub lease: String,
    /// Where the body starts in the job's log.
    pub offset: u64,
}

/// The answer to a log append.
///
/// The server stores the body from `offset`; bytes it already holds are accepted again without
/// change (a retry after a lost answer is harmless). It may store only part of the body, and
/// says so: the agent continues from `next_offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAppendResponse {
    /// The size of the stored log after this request: where the next chunk starts.
    pub next_offset: u64,
    /// Cancellation was requested (as in [`HeartbeatResponse::cancel`]).
    #[serde(default)]
    pub cancel: bool,
}

/// The 409 body of a log append that would leave a gap (`offset` beyond the stored size), and
/// of a finish whose `log_size` is not the stored size. The agent resends from
/// `expected_offset`. The server may add the [`ErrorBody`] fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConflict {
    /// The size of the log the server has stored: where the agent must continue.
    pub expected_offset: u64,
}

/// `POST /api/agent/jobs/{id}/events`: step boundaries, annotations, groups and summaries, in
/// order. Idempotent by `seq`: events the server already has are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEventsRequest {
    /// The assignment's lease.
    pub lease_id: String,
    /// Consecutive events in `seq` order, starting at or below the server's `next_seq`.
    pub events: Vec<SequencedEvent>,
}

/// One event with its place in the job's event sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequencedEvent {
    /// 0 for the job's first event, then +1 for each, without gaps.
    pub seq: u64,
    pub event: JobEvent,
}

/// Something that happened in a job, besides log text (which goes to `/logs`). Serialized
/// flat: `{"at_ms":..,"log_offset":..,"event":"step_started","step":0,"name":".."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// When it happened, ms since the epoch (agent clock).
    pub at_ms: i64,
    /// The size of the job's log when it happened: a step's log runs from the `log_offset` of
    /// its `step_started` to that of its `step_finished`; an annotation or group sits at its
    /// offset.
    pub log_offset: u64,
    #[serde(flatten)]
    pub kind: JobEventKind,
}

/// The kinds of [`JobEvent`]: the runner's events ([`crate::EventKind`]) that are not log
/// text, with the step's name repeated where the server needs it on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum JobEventKind {
    /// A step (0-based index in the job's steps) began. Skipped steps also start and finish.
    StepStarted { step: usize, name: String },
    /// A step ended. `outcome` is its result before `continue-on-error`, `conclusion` after.
    StepFinished {
        step: usize,
        name: String,
        outcome: Conclusion,
        conclusion: Conclusion,
        duration_ms: u64,
    },
    /// `::error`, `::warning`, `::notice`, and the runner's own errors; `step` is `None` for
    /// the job itself. Already masked.
    Annotation {
        step: Option<usize>,
        annotation: Annotation,
    },
    /// `::group::title` (already masked).
    GroupStarted { step: Option<usize>, title: String },
    /// `::endgroup::`.
    GroupEnded { step: Option<usize> },
    /// The content of `GITHUB_STEP_SUMMARY` after a step (markdown, already masked).
    StepSummary { step: usize, markdown: String },
}

/// The answer to [`JobEventsRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsResponse {
    /// One past the highest `seq` stored without a gap before it: the agent drops the events
    /// below it and sends the rest again.
    pub next_seq: u64,
    /// Cancellation was requested (as in [`HeartbeatResponse::cancel`]).
    #[serde(default)]
    pub cancel: bool,
}

/// `POST /api/agent/jobs/{id}/finish`: the job's result, sent after every log byte and event
/// was acknowledged (or with the last ones: `log_tail`, `events`), and repeated until
/// acknowledged. 200 once stored (again 200 for a repeat with the same lease); 409
/// [`LogConflict`] when `log_size` is not the stored log size once `log_tail` is appended (the
/// agent sends the missing bytes, then finishes again). The tail, the events and the result
/// are stored in one transaction: all of them or none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishRequest {
    /// The assignment's lease.
    pub lease_id: String,
    pub conclusion: Conclusion,
    /// Why, when the steps' own result is not the whole story (see [`FailureReason`]).
    #[serde(default)]
    pub reason: Option<FailureReason>,
    /// The job's `outputs`, evaluated at its end.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// The complete log's size in bytes.
    pub log_size: u64,
    /// The agent cancelled the job itself because it was stopping (SIGQUIT or a second
    /// SIGTERM), not because anyone asked: an infrastructure stop (`agent_stop`) the server may
    /// retry. `conclusion` is then `cancelled`.
    #[serde(default)]
    pub agent_stop: bool,
    /// The end of the log not sent yet, when it is UTF-8 text: appended at its offset exactly
    /// like a `/logs` chunk, before `log_size` is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<LogTail>,
    /// Events not sent yet, as a `/events` request would carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SequencedEvent>,
}

/// Log bytes sent inside a [`FinishRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTail {
    /// The log offset of the first byte of `text`.
    pub offset: u64,
    pub text: String,
}

/// The 200 answer to a finish.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishResponse {}

/// The body of an error answer (4xx other than the 409s with [`LogConflict`], and 5xx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code: `unauthorized`, `lease_gone`, `not_found`,
    /// `bad_request`, `too_large`, `unavailable`, `internal`...
    pub error: String,
    /// A sentence for people. Never internal details.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_event_is_flat_json() {
        let event = JobEvent {
            at_ms: 5,
            log_offset: 42,
            kind: JobEventKind::StepFinished {
                step: 1,
                name: "Build".into(),
                outcome: Conclusion::Failure,
                conclusion: Conclusion::Success,
                duration_ms: 7,
            },
        };
        let value = serde_json::to_value(&event).expect("serializes");
        assert_eq!(
            value,
            json!({"at_ms": 5, "log_offset": 42, "event": "step_finished", "step": 1,
                   "name": "Build", "outcome": "failure", "conclusion": "success",
                   "duration_ms": 7})
        );
        let back: JobEvent = serde_json::from_value(value).expect("deserializes");
        assert_eq!(back, event);
    }

    #[test]
    fn optional_fields_default_when_absent() {
        let finish: FinishRequest = serde_json::from_value(json!({
            "lease_id": "l", "conclusion": "success", "log_size": 3
        }))
        .expect("deserializes");
        assert_eq!(finish.reason, None);
        assert!(finish.outputs.is_empty());
        assert!(!finish.agent_stop);
        let poll: PollRequest = serde_json::from_value(json!({})).expect("empty poll");
        assert_eq!(poll, PollRequest::default());
        let heartbeat: HeartbeatResponse =
            serde_json::from_value(json!({"lease_expires_ms": 1})).expect("no cancel");
        assert!(!heartbeat.cancel);
        let source: JobSource =
            serde_json::from_value(json!({"url": "u", "sha": "s"})).expect("no ref");
        assert_eq!(source.git_ref, None);
    }
}
