//! How an agent is set up: where its server is, what it offers, where it keeps its state and
//! its jobs, and the timings of heartbeats, retries and cancellation.

use gantry_runner::process::StopPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `Agent::run` needs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The server's base URL (`https://ci.example.com`); the agent API is under
    /// `/api/agent/`.
    pub server_url: String,
    /// The registration token, exchanged once for the agent's own credential. Not needed when
    /// the state directory already holds a credential for this server.
    pub registration_token: Option<String>,
    /// The agent's display name.
    pub name: String,
    /// What the agent offers to `runs-on` (`linux`, `x64`...).
    pub labels: Vec<String>,
    /// Jobs run at once (at least 1).
    pub concurrency: usize,
    /// Where the credential file lives (`credential.json`, mode 0600), kept across restarts.
    pub state_dir: PathBuf,
    /// Where jobs run: one directory per job slot (`slot_<n>`), emptied when its job is reported.
    pub work_dir: PathBuf,
    /// Heartbeat interval when an assignment does not give one.
    pub heartbeat_interval: Duration,
    /// Backoff of retried requests.
    pub retry: RetryPolicy,
    /// The most log bytes sent in one request.
    pub log_chunk_size: usize,
    /// The most events sent in one request.
    pub events_batch: usize,
    /// How long new log text may wait to be sent with what follows it (fewer, larger
    /// requests for chatty jobs).
    pub log_linger: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one request (other than a poll) and its answer.
    pub request_timeout: Duration,
    /// Time allowed for a poll, which the server holds up to 30 s.
    pub poll_timeout: Duration,
    /// How processes are stopped: SIGINT, then SIGTERM, then SIGKILL after these graces.
    pub stop: StopPolicy,
    /// After a cancel, how long the job may go on (`always()` steps, the stop sequence of the
    /// running step) before it is stopped at once.
    pub cancel_grace: Duration,
    /// When the agent is stopped (SIGQUIT), how long it keeps trying to report its cancelled
    /// jobs to an unreachable server before it exits anyway (the server's lease sweep then
    /// finds them).
    pub stop_report_timeout: Duration,
    /// The agent takes no job while the filesystem of its work directory has less than this
    /// many bytes free (0: no check): a job that would fail for want of space waits for an
    /// agent that has it.
    pub min_free_space: u64,
    /// How often free space is looked at again while it is short.
    pub free_space_recheck: Duration,
}

impl AgentConfig {
    /// A configuration with the default timings.
    pub fn new(server_url: impl Into<String>, state_dir: PathBuf, work_dir: PathBuf) -> Self {
        AgentConfig {
            server_url: server_url.into(),
            registration_token: None,
            name: "gantry-agent".to_owned(),
            labels: Vec::new(),
            concurrency: 1,
            state_dir,
            work_dir,
            heartbeat_interval: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            log_chunk_size: 256 * 1024,
            events_batch: 100,
            log_linger: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            poll_timeout: Duration::from_secs(45),
            stop: StopPolicy::default(),
            cancel_grace: Duration::from_secs(60),
            stop_report_timeout: Duration::from_secs(60),
            min_free_space: 200 * 1024 * 1024,
            free_space_recheck: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff with jitter for retried requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Each delay is this many times the one before (before jitter).
    pub multiplier: f64,
    /// The share of each delay that is random: 0.5 picks uniformly between half the delay and
    /// the whole of it.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}
