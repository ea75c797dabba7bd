//! Sends one job's log and events to the server while it runs, then its result.
//!
//! The log goes from the spool in chunks, each starting at the last offset the server
//! acknowledged: a partial acceptance continues from the server's `next_offset`, a 409 rewinds
//! to its `expected_offset`, and while the server is unreachable the bytes simply wait on disk.
//! Events go in `seq` order and are dropped once acknowledged. The finish request goes last,
//! after everything else was acknowledged, and is repeated until the server acknowledges it
//! too: a log the server keeps refusing never holds back the job's result. When what is left
//! at the job's end is small (up to 64 KiB of UTF-8 log and one batch of events), it goes
//! inside the finish request, stored with the result in one transaction: a short job costs
//! the server one request after its claim.

use crate::backoff::Backoff;
use crate::client::{Client, ClientError};
use crate::config::RetryPolicy;
use crate::control::JobControl;
use crate::sink::EventQueue;
use crate::spool::LogSpool;
use bytes::Bytes;
use gantry_protocol::agent::{FinishRequest, JobEventsRequest, LogTail, SequencedEvent};
use gantry_runner::JobOutcome;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The smallest chunk a 413 answer makes the uploader fall back to.
const MIN_CHUNK: usize = 4 * 1024;

/// The most log bytes a finish request carries.
const TAIL_MAX: usize = 64 * 1024;

/// What a finish request carries besides the result.
#[derive(Debug, Default)]
struct FinalReport {
    log_tail: Option<LogTail>,
    events: Vec<SequencedEvent>,
}

/// How a job's report ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The server acknowledged the finish.
    Finished,
    /// The lease is gone (410): the job is not this agent's any more.
    Gone,
    /// The server refused the finish request itself (a 4xx other than 409/410).
    Refused(String),
}

/// What one upload request achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// Nothing is waiting.
    Idle,
    /// The server took something (or the uploader learnt where to continue).
    Advanced,
    /// The server answered but took nothing: try again later.
    Stalled,
}

/// Where a job's uploads stand.
pub struct Uploader {
    client: Client,
    job_id: String,
    lease_id: String,
    spool: Arc<LogSpool>,
    events: Arc<EventQueue>,
    wake: Arc<Notify>,
    control: Arc<JobControl>,
    retry: RetryPolicy,
    chunk_size: usize,
    events_batch: usize,
    /// How long to let log text gather after a wake-up before sending it.
    linger: Duration,
    /// The server's log size, as it last told us.
    acked: u64,
    /// The finish request was too large with the log's end and the last events in it: they
    /// go in their own requests.
    separate: bool,
    /// Why log upload was given up (the server refused it), if it was.
    log_refused: Option<String>,
    events_refused: Option<String>,
}

/// The settings of an [`Uploader`].
#[derive(Clone, Debug)]
pub struct UploadSettings {
    pub retry: RetryPolicy,
    pub chunk_size: usize,
    pub events_batch: usize,
    pub linger: Duration,
}

impl Uploader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        job_id: String,
        lease_id: String,
        spool: Arc<LogSpool>,
        events: Arc<EventQueue>,
        wake: Arc<Notify>,
        control: Arc<JobControl>,
        settings: UploadSettings,
    ) -> Self {
        Uploader {
            client,
            job_id,
            lease_id,
            spool,
            events,
            wake,
            control,
            retry: settings.retry,
            chunk_size: settings.chunk_size.max(1),
            events_batch: settings.events_batch.max(1),
            linger: settings.linger,
            acked: 0,
            separate: false,
            log_refused: None,
            events_refused: None,
        }
    }

    /// The server's log size as last acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acked
    }

    /// Uploads as the job runs; returns once the job ended and everything was acknowledged
    /// (or refused), or when the lease is gone.
    pub async fn stream(&mut self) {
        let mut backoff = Backoff::new(self.retry);
        // What the job's start produces gathers too: a job shorter than the linger is
        // reported with its result, in one request.
        if !self.control.is_ended() && !self.linger.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.linger) => {}
                _ = self.control.ended() => {}
                _ = self.control.gone() => return,
            }
        }
        loop {
            if self.control.is_gone() {
                return;
            }
            let ended = self.control.is_ended();
            if ended && self.rest_fits() {
                // What is left goes with the result.
                return;
            }
            match self.send_once().await {
                Ok(Progress::Advanced) => backoff.reset(),
                Ok(Progress::Idle) => {
                    if ended {
                        return;
                    }
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = self.control.ended() => {}
                        _ = self.control.gone() => return,
                    }
                    // Let a burst of output gather into one request.
                    if !self.control.is_ended() && !self.linger.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.linger) => {}
                            _ = self.control.ended() => {}
                        }
                    }
                }
                Ok(Progress::Stalled) => {
                    self.wait(&mut backoff, "the server took none of it").await
                }
                Err(ClientError::LeaseGone) => {
                    self.control.lease_gone();
                    return;
                }
                Err(error) => self.wait(&mut backoff, &error.to_string()).await,
            }
        }
    }

    /// Sends the job's result once everything else is acknowledged, and again until the
    /// server acknowledges it. A 409 sends the missing log bytes first.
    pub async fn finish(&mut self, outcome: &JobOutcome) -> Report {
        let mut backoff = Backoff::new(self.retry);
        let mut conflicts = 0u32;
        loop {
            let mut rest = self.final_report();
            if rest.is_none() {
                self.stream().await;
                rest = self.final_report();
            }
            if self.control.is_gone() {
                return Report::Gone;
            }
            let FinalReport { log_tail, events } = rest.unwrap_or_default();
            let log_size = match &log_tail {
                Some(tail) => tail.offset + tail.text.len() as u64,
                None => self.final_log_size(),
            };
            let sent_tail = log_tail.is_some();
            let next_seq = events.last().map(|e| e.seq + 1);
            let body = FinishRequest {
                lease_id: self.lease_id.clone(),
                conclusion: outcome.conclusion,
                reason: outcome.reason.clone(),
                outputs: outcome.outputs.clone(),
                log_size,
                agent_stop: self.control.is_agent_stop(),
                log_tail,
                events,
            };
            match self.client.finish(&self.job_id, &body).await {
                Ok(()) => {
                    if sent_tail {
                        self.set_acked(log_size);
                    }
                    if let Some(next_seq) = next_seq {
                        self.events.acknowledge(next_seq);
                    }
                    return Report::Finished;
                }
                Err(ClientError::Rejected { status: 413, .. }) if !self.separate => {
                    // Too large together: the rest goes the usual way first.
                    self.separate = true;
                }
                Err(ClientError::Rejected {
                    status: 409,
                    message,
                }) if sent_tail && self.log_refused.is_none() => {
                    self.refuse_log(format!("the server refused the log's end (409): {message}"));
                }
                Err(ClientError::Conflict { expected_offset }) => {
                    tracing::info!(
                        job = %self.job_id,
                        "finish: the server holds {expected_offset} log bytes, the agent {}; \
                         sending the difference",
                        body.log_size
                    );
                    self.set_acked(expected_offset);
                    conflicts += 1;
                    if conflicts > 1 {
                        self.wait(&mut backoff, "the log sizes still differ").await;
                    }
                }
                Err(ClientError::LeaseGone) => {
                    self.control.lease_gone();
                    return Report::Gone;
                }
                Err(error) if error.is_transient() => {
                    self.wait(&mut backoff, &format!("finish: {error}")).await;
                }
                Err(error) => {
                    tracing::error!(job = %self.job_id, "the server refused the job's result: {error}");
                    return Report::Refused(error.to_string());
                }
            }
        }
    }

    /// What the finish request can carry besides the result: the log bytes and events not
    /// acknowledged yet, when they are few enough for one request and the log's end is UTF-8
    /// text. `None`: they go in their own requests first.
    fn final_report(&mut self) -> Option<FinalReport> {
        if !self.rest_fits() {
            return None;
        }
        let mut report = FinalReport::default();
        let pending = self.pending_log();
        if pending > 0 {
            let bytes = self.spool.read_chunk(self.acked, pending);
            match bytes
                .ok()
                .filter(|b| b.len() == pending)
                .map(String::from_utf8)
            {
                Some(Ok(text)) => {
                    report.log_tail = Some(LogTail {
                        offset: self.acked,
                        text,
                    });
                }
                // Not whole, or not text at its start (a chunk accepted in part can end
                // inside a character): the usual requests carry it.
                _ => {
                    self.separate = true;
                    return None;
                }
            }
        }
        if self.events_refused.is_none() {
            report.events = self.events.batch(self.events_batch);
        }
        Some(report)
    }

    /// Whether what is not acknowledged yet is small enough to go with the result, by its
    /// sizes ([`Uploader::final_report`] then reads it).
    fn rest_fits(&self) -> bool {
        !self.separate
            && self.pending_log() <= TAIL_MAX
            && (self.events_refused.is_some() || self.events.len() <= self.events_batch)
    }

    /// Log bytes written and not acknowledged (0 once the log was refused).
    fn pending_log(&self) -> usize {
        if self.log_refused.is_some() {
            return 0;
        }
        usize::try_from(self.spool.size().saturating_sub(self.acked)).unwrap_or(usize::MAX)
    }

    /// The log size the finish request states: the whole spool, unless the server refused
    /// the log (then what it has), or says it has more than the agent ever wrote.
    fn final_log_size(&self) -> u64 {
        let size = self.spool.size();
        if self.log_refused.is_some() || self.acked > size {
            self.acked
        } else {
            size
        }
    }

    async fn wait(&self, backoff: &mut Backoff, why: &str) {
        let delay = backoff.next_delay();
        tracing::warn!(
            job = %self.job_id,
            "upload failed ({} in a row), retrying in {} ms: {why}",
            backoff.failures(),
            delay.as_millis()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = self.control.gone() => {}
        }
    }

    /// One request: log bytes first, then events.
    async fn send_once(&mut self) -> Result<Progress, ClientError> {
        if self.log_refused.is_none() && self.acked < self.spool.size() {
            return self.send_log_chunk().await;
        }
        if self.events_refused.is_none() && !self.events.is_empty() {
            return self.send_events().await;
        }
        Ok(Progress::Idle)
    }

    async fn send_log_chunk(&mut self) -> Result<Progress, ClientError> {
        let offset = self.acked;
        let chunk = match self.spool.read_chunk(offset, self.chunk_size) {
            Ok(chunk) if !chunk.is_empty() => chunk,
            Ok(_) => return Ok(Progress::Idle),
            Err(error) => {
                self.refuse_log(format!("the log spool could not be read: {error}"));
                return Ok(Progress::Advanced);
            }
        };
        let len = chunk.len() as u64;
        let result = self
            .client
            .append_log(&self.job_id, &self.lease_id, offset, Bytes::from(chunk))
            .await;
        match result {
            Ok(answer) => {
                if answer.cancel {
                    self.control.request_cancel();
                }
                if answer.next_offset < offset + len {
                    tracing::debug!(
                        job = %self.job_id,
                        "the server took {} of {len} log bytes",
                        answer.next_offset.saturating_sub(offset)
                    );
                }
                let moved = answer.next_offset != offset;
                self.set_acked(answer.next_offset);
                Ok(if moved {
                    Progress::Advanced
                } else {
                    Progress::Stalled
                })
            }
            Err(ClientError::Conflict { expected_offset }) => {
                tracing::info!(
                    job = %self.job_id,
                    "log offset {offset} refused, the server holds {expected_offset} bytes: \
                     continuing from there"
                );
                self.set_acked(expected_offset);
                Ok(Progress::Advanced)
            }
            Err(ClientError::Rejected { status: 413, .. }) if self.chunk_size > MIN_CHUNK => {
                self.chunk_size = (self.chunk_size / 2).max(MIN_CHUNK);
                Ok(Progress::Advanced)
            }
            Err(error) if error.is_transient() || matches!(error, ClientError::LeaseGone) => {
                Err(error)
            }
            Err(error) => {
                self.refuse_log(error.to_string());
                Ok(Progress::Advanced)
            }
        }
    }

    async fn send_events(&mut self) -> Result<Progress, ClientError> {
        let events = self.events.batch(self.events_batch);
        let Some(first) = events.first().map(|e| e.seq) else {
            return Ok(Progress::Idle);
        };
        let body = JobEventsRequest {
            lease_id: self.lease_id.clone(),
            events,
        };
        match self.client.send_events(&self.job_id, &body).await {
            Ok(answer) => {
                if answer.cancel {
                    self.control.request_cancel();
                }
                self.events.acknowledge(answer.next_seq);
                Ok(if answer.next_seq > first {
                    Progress::Advanced
                } else {
                    Progress::Stalled
                })
            }
            Err(ClientError::Rejected { status: 413, .. }) if self.events_batch > 1 => {
                self.events_batch = (self.events_batch / 2).max(1);
                Ok(Progress::Advanced)
            }
            Err(error) if error.is_transient() || matches!(error, ClientError::LeaseGone) => {
                Err(error)
            }
            Err(error) => {
                tracing::error!(job = %self.job_id, "the server refused the job's events; no more are sent: {error}");
                self.events_refused = Some(error.to_string());
                Ok(Progress::Advanced)
            }
        }
    }

    fn set_acked(&mut self, offset: u64) {
        let size = self.spool.size();
        if offset > size {
            tracing::warn!(
                job = %self.job_id,
                "the server claims {offset} log bytes; the agent wrote {size}"
            );
        }
        self.acked = offset;
    }

    fn refuse_log(&mut self, why: String) {
        tracing::error!(job = %self.job_id, "log upload given up: {why}");
        self.log_refused = Some(why);
    }
}
