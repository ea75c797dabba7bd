//! The stop switches of one running job, shared by the job, its heartbeat and its uploader: a
//! cancel the server asked for, the agent's own stop, and a lease that is gone.

use crate::sink::JobSink;
use gantry_runner::Cancel;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a job is being stopped, and whether it ended.
#[derive(Debug)]
pub struct JobControl {
    /// The runner's cancellation of this job.
    cancel: Cancel,
    /// How long a cancelled job may go on before it is stopped at once.
    grace: Duration,
    /// The job's steps are over (the runner returned).
    ended: CancellationToken,
    /// The server answered 410: the job is no longer this agent's.
    gone: CancellationToken,
    /// The agent is stopping and cancelled the job itself.
    agent_stop: AtomicBool,
    sink: Arc<JobSink>,
}

impl JobControl {
    pub fn new(grace: Duration, sink: Arc<JobSink>) -> Self {
        JobControl {
            cancel: Cancel::default(),
            grace,
            ended: CancellationToken::new(),
            gone: CancellationToken::new(),
            agent_stop: AtomicBool::new(false),
            sink,
        }
    }

    /// The runner's cancel handle for this job.
    pub fn runner_cancel(&self) -> Cancel {
        self.cancel.clone()
    }

    /// The server asked for the job to be cancelled: graceful cancellation (the running step
    /// is interrupted, `always()` steps run), then a forced stop after the grace.
    pub fn request_cancel(&self) {
        if self.begin_cancel() {
            self.sink
                .log("[gantry agent] Cancellation requested: stopping the job.\n");
            tracing::info!("cancelling a job at the server's request");
        }
    }

    /// The agent is stopping (SIGQUIT): cancel as for a server request, and report the job as
    /// stopped by the agent.
    pub fn stop_for_shutdown(&self) {
        self.agent_stop.store(true, Ordering::SeqCst);
        if self.begin_cancel() {
            self.sink
                .log("[gantry agent] The agent is stopping: cancelling the job.\n");
        }
    }

    /// The server no longer knows this lease (the job was reassigned or reaped): stop the job
    /// at once; nothing more is reported for it.
    pub fn lease_gone(&self) {
        if !self.gone.is_cancelled() {
            tracing::warn!("the job's lease is gone (410): stopping it without reporting");
        }
        self.gone.cancel();
        self.cancel.cancel.cancel();
        self.cancel.force.cancel();
    }

    /// Marks the end of the job's steps.
    pub fn end(&self) {
        self.ended.cancel();
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    pub fn is_gone(&self) -> bool {
        self.gone.is_cancelled()
    }

    pub fn is_agent_stop(&self) -> bool {
        self.agent_stop.load(Ordering::SeqCst)
    }

    pub fn is_cancel_requested(&self) -> bool {
        self.cancel.cancel.is_cancelled()
    }

    pub async fn ended(&self) {
        self.ended.cancelled().await;
    }

    pub async fn gone(&self) {
        self.gone.cancelled().await;
    }

    /// Starts the cancel sequence once; true the first time.
    fn begin_cancel(&self) -> bool {
        if self.cancel.cancel.is_cancelled() || self.is_ended() {
            return false;
        }
        self.cancel.cancel.cancel();
        let force = self.cancel.force.clone();
        let ended = self.ended.clone();
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(grace) => force.cancel(),
                _ = ended.cancelled() => {}
            }
        });
        true
    }
}
