//! A job's heartbeat: renews the lease every interval from the job's start until it is
//! reported, draining or not; passes the server's cancel on; stops the job on 410.

use crate::client::{Client, ClientError};
use crate::control::JobControl;
use crate::shutdown::Shutdown;
use gantry_protocol::agent::HeartbeatRequest;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Sends heartbeats until `stop` is cancelled or the lease is gone.
pub async fn keep_alive(
    client: Client,
    job_id: String,
    lease_id: String,
    interval: Duration,
    control: Arc<JobControl>,
    shutdown: Shutdown,
    stop: CancellationToken,
) {
    let interval = interval.max(Duration::from_millis(10));
    // The server may hold a heartbeat for up to an interval and answer at once when the job is
    // cancelled (so a cancel reaches the agent within a second); the timeout leaves room for it.
    let timeout = interval * 2 + Duration::from_secs(2);
    let mut last_success = Instant::now();
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        let sent = Instant::now();
        wait = interval;
        let body = HeartbeatRequest {
            lease_id: lease_id.clone(),
            draining: shutdown.is_draining(),
        };
        let result = tokio::select! {
            result = tokio::time::timeout(timeout, client.heartbeat(&job_id, &body)) => result,
            _ = stop.cancelled() => return,
        };
        match result {
            Ok(Ok(answer)) => {
                last_success = Instant::now();
                // A held answer means the server watches for cancels: ask again at once.
                wait = if sent.elapsed() >= interval / 2 {
                    Duration::ZERO
                } else {
                    interval
                };
                if answer.cancel {
                    control.request_cancel();
                }
            }
            Ok(Err(ClientError::LeaseGone)) => {
                control.lease_gone();
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    job = %job_id,
                    "heartbeat failed (last successful {:.1} s ago): {error}",
                    last_success.elapsed().as_secs_f64()
                );
            }
            Err(_) => {
                tracing::warn!(
                    job = %job_id,
                    "heartbeat timed out (last successful {:.1} s ago)",
                    last_success.elapsed().as_secs_f64()
                );
            }
        }
    }
}
