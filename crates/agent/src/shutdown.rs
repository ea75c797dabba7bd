//! How the agent is told to stop: drain (finish running jobs, take no new ones) or cancel
//! (cancel running jobs, report them cancelled, exit).

use tokio_util::sync::CancellationToken;

/// The two stop signals of an agent. Clones share state. Cancelling also drains.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    drain: CancellationToken,
    cancel: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// SIGTERM: take no new jobs, finish the running ones (heartbeats go on), then exit.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// SIGQUIT or a second SIGTERM: cancel the running jobs, report them cancelled, exit.
    pub fn cancel(&self) {
        self.drain.cancel();
        self.cancel.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when draining starts (or cancelling, which drains too).
    pub async fn drained(&self) {
        self.drain.cancelled().await;
    }

    /// Completes when cancelling starts.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}
