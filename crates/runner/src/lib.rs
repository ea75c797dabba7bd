//! Runs one job spec on a backend and reports through an event stream (`job::EventSink`).
//! Never prints: the CLI's printer, the local run store and the agent's uploader consume the
//! same events. The only YAML it reads is a local action's `action.yml`, through the workflow
//! crate.

pub mod action;
pub mod checkout;
pub mod command;
pub mod composite;
pub mod context;
pub mod file_command;
pub mod job;
pub mod mask;
pub mod output;
pub mod process;
pub mod shell;
pub mod step_files;

pub use job::{Cancel, EventSink, JobOutcome, JobRequest, RunnerOptions, run_job};
pub use step_files::StepFiles;
