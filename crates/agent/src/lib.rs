//! The Gantry agent: registers with a server, long-polls for jobs, runs each with the runner
//! (host backend), and sends logs, step events and results back, retrying until acknowledged.
//! Secrets are masked here, before anything leaves the machine. See docs/server.md.
//!
//! What it owns: the agent side of the agent protocol ([`gantry_protocol::agent`]), the job's
//! workspace under the work dir, the log spool on disk. What it must not do: print (it logs
//! through `tracing`), hold a job's whole log in memory, drop a job's result because its log
//! could not be sent, or retry a request the server refused (4xx) other than the documented
//! 409 and 410 cases.
//!
//! Faults and what the agent does:
//!
//! - no answer, 5xx, 408, 429: retried with exponential backoff and jitter; log bytes wait in
//!   the spool, events in their queue; heartbeats go on at their interval;
//! - a log chunk partly accepted: the next chunk starts at the server's `next_offset`;
//! - 409 `{expected_offset}` on logs or finish: the upload rewinds (or skips) to that offset;
//! - `cancel: true` in any answer: the runner's graceful cancel, a forced stop after
//!   [`AgentConfig::cancel_grace`];
//! - 410 on any job request: the job is stopped at once and not reported (it is not this
//!   agent's any more);
//! - 401 on poll: the agent stops taking jobs and exits with an error once its jobs end.

pub mod agent;
pub mod backoff;
pub mod client;
pub mod config;
pub mod control;
pub mod credential;
pub mod error;
pub mod heartbeat;
pub mod job;
pub mod shutdown;
pub mod sink;
pub mod spool;
pub mod uploader;

pub use agent::Agent;
pub use client::{Client, ClientError};
pub use config::{AgentConfig, RetryPolicy};
pub use error::AgentError;
pub use shutdown::Shutdown;
