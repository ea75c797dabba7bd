//! The runner's event stream. The runner emits these; the terminal printer, the `.gantry/runs`
//! store and the agent's uploader consume the same events. Log text is already masked.

use crate::Conclusion;
use crate::FailureReason;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// One event of one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The job's key in its run (`JobSpec::key`).
    pub job: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum EventKind {
    JobStarted {
        name: String,
    },
    /// The job was not started: its `if:` was false, a job it needs failed, or the run was
    /// cancelled before it started.
    JobSkipped {
        name: String,
        reason: String,
    },
    StepStarted {
        step: usize,
        name: String,
    },
    /// Output of a step (or of the runner itself when `step` is `None`), already masked. One
    /// or more lines, each ending with `\n`; a very long line comes in pieces, and only its last
    /// piece ends with `\n`.
    Log {
        step: Option<usize>,
        text: String,
    },
    /// `::group::title`.
    GroupStarted {
        step: Option<usize>,
        title: String,
    },
    GroupEnded {
        step: Option<usize>,
    },
    /// `::error`, `::warning`, `::notice`, and the runner's own errors.
    Annotation {
        step: Option<usize>,
        annotation: Annotation,
    },
    /// `::debug::` messages (shown only when step debug logging is on).
    Debug {
        step: Option<usize>,
        text: String,
    },
    StepFinished {
        step: usize,
        outcome: Conclusion,
        conclusion: Conclusion,
        duration_ms: u64,
    },
    /// The content of `GITHUB_STEP_SUMMARY` after a step.
    StepSummary {
        step: usize,
        markdown: String,
    },
    JobFinished {
        conclusion: Conclusion,
        reason: Option<FailureReason>,
        outputs: IndexMap<String, String>,
        duration_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationLevel {
    Error,
    Warning,
    Notice,
}

/// A message attached to a place in the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub level: AnnotationLevel,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub column: Option<u32>,
    pub end_column: Option<u32>,
}
