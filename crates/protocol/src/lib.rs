//! Types shared by the planner (workflow crate), the runner, the server, the agent and the CLI:
//! job specs, results and the runner's event stream.
//!
//! This crate holds data only: no I/O, no evaluation, no YAML. Everything here is serde
//! (de)serializable because job specs travel from the server to agents and events travel back.

pub mod agent;
pub mod event;
pub mod spec;

pub use event::{Annotation, AnnotationLevel, Event, EventKind};
pub use spec::{
    ContainerSpec, JobSpec, RunDefaults, ServiceSpec, StepKind, StepSpec, StrategyContext,
    WorkflowRef,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The result of a step or a job, as GitHub names them (`steps.<id>.outcome`,
/// `needs.<job>.result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job ended the way it did when the reason is not the steps' own result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum FailureReason {
    /// A step failed (the normal case).
    StepFailed,
    /// The job ran past `timeout-minutes`.
    TimedOut,
    /// The run or job was cancelled by a user, fail-fast or a concurrency group.
    Cancelled,
    /// The job could not start: an unavailable action, a bad expression, a missing shell...
    SetupFailed(String),
    /// The agent running it stopped answering.
    AgentLost,
}
