//! A job's log: `GET /api/v1/jobs/{id}/logs` serves the stored bytes (HTTP Range: `bytes=a-b`,
//! `bytes=a-`, `bytes=-n`; 206 with `Content-Range`, 416 when the range starts past the end),
//! and `GET /api/v1/jobs/{id}/logs/live` follows it as server-sent events.
//!
//! # Live logs
//!
//! The stream starts at a byte offset: the `Last-Event-ID` header (what a browser's
//! `EventSource` sends when it reconnects), else `?offset=N`, else 0. Each `log` event carries
//! the log text after the previous one and has as its id the byte offset right after that
//! text, so a client that reconnects with the last id it saw misses nothing and gets nothing
//! twice. When the job has completed and every byte was sent, an `end` event (with the job's
//! status, conclusion and log size) closes the stream.
//!
//! Text is cut at UTF-8 character boundaries (a character split across two uploads waits for
//! its rest), and since SSE has no way to carry a carriage return inside an event, `\r\n` and
//! a lone `\r` arrive as `\n`; the raw endpoint has the exact bytes.
//!
//! With `?events=true` the stream also carries `event` events: the job's stored events (steps
//! starting and finishing, annotations, groups, summaries) as JSON with their `seq`, from the
//! first on every connection; they have no id, so they do not move the resume offset.
//!
//! The stream wakes as soon as the agent API stores bytes ([`crate::web::notify_log`]), and
//! looks again every few seconds regardless (a lost wake-up only delays).

use super::auth::{ApiQuery, Reader};
use super::jobs::find_job;
use crate::agent_api::store_error;
use crate::app::AppState;
use crate::error::ApiError;
use crate::store::{Db, JobId, StoreError};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Bytes read from the store at a time, for raw answers.
const RAW_CHUNK: u64 = 1024 * 1024;
/// Most bytes one `log` event carries.
const LIVE_CHUNK: u64 = 64 * 1024;
/// How often a live stream looks at the store without a wake-up.
const LIVE_POLL: Duration = Duration::from_secs(2);
/// Job events read at a time.
const EVENT_BATCH: u32 = 200;

/// What a `Range` header asks for, against a log of `size` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one this server ignores (several ranges, another unit, malformed): the
    /// whole log, 200.
    Full,
    /// These bytes, 206.
    Partial(Range<u64>),
    /// A range starting at or past the end, 416.
    Unsatisfiable,
}

/// Reads a `Range` header value (RFC 9110 §14.1.2) for a resource of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(size.saturating_sub(n)..size),
            None => RangeRequest::Full,
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a >= size => RangeRequest::Unsatisfiable,
            Some(a) => RangeRequest::Partial(a..size),
            None => RangeRequest::Full,
        },
        // `a-b`: both inclusive.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial(a..b.saturating_add(1).min(size))
                }
            }
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

/// `GET /api/v1/jobs/{id}/logs`.
pub async fn raw_log(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &id).await?;
    let log = state.db.log_state(&job.id).await.map_err(store_error)?;
    let size = log.size;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size))
        .unwrap_or(RangeRequest::Full);
    let (status, bytes) = match range {
        RangeRequest::Full => (StatusCode::OK, 0..size),
        RangeRequest::Partial(bytes) => (StatusCode::PARTIAL_CONTENT, bytes),
        RangeRequest::Unsatisfiable => {
            let mut response = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                axum::Json(json!({
                    "error": "range_not_satisfiable",
                    "message": format!("the log of job {} has {size} bytes", job.id),
                })),
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return Ok(response);
        }
    };
    let mut response = Response::new(Body::from_stream(read_stream(
        state.db.clone(),
        job.id.clone(),
        bytes.clone(),
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_LENGTH,
        header_value(&(bytes.end - bytes.start).to_string()),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!(
                "bytes {}-{}/{size}",
                bytes.start,
                bytes.end.saturating_sub(1)
            )),
        );
    }
    headers.insert(
        "x-gantry-log-complete",
        HeaderValue::from_static(if log.complete { "true" } else { "false" }),
    );
    headers.insert(
        "x-gantry-log-truncated",
        HeaderValue::from_static(if log.truncated { "true" } else { "false" }),
    );
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The bytes `range` of a job's log, read from the store a piece at a time.
fn read_stream(
    db: Db,
    job: JobId,
    range: Range<u64>,
) -> impl Stream<Item = Result<Bytes, StoreError>> {
    futures::stream::try_unfold(range.start, move |at| {
        let db = db.clone();
        let job = job.clone();
        let end = range.end;
        async move {
            if at >= end {
                return Ok(None);
            }
            let to = end.min(at + RAW_CHUNK);
            let bytes = db.read_log(&job, at..to).await?;
            if bytes.is_empty() {
                // Fewer bytes than the size said (cannot happen: the stored log only grows).
                return Ok(None);
            }
            let next = at + bytes.len() as u64;
            Ok(Some((Bytes::from(bytes), next)))
        }
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Where to start, when there is no `Last-Event-ID` header.
    pub offset: Option<u64>,
    /// Also send the job's events.
    #[serde(default)]
    pub events: bool,
}

/// `GET /api/v1/jobs/{id}/logs/live`.
pub async fn live_log(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &id).await?;
    let offset = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID is not a byte offset of this log".into())
            })?,
        None => query.offset.unwrap_or(0),
    };
    // Subscribed before the first read, so no change between the read and the wait is missed.
    let wake = crate::web::watch_log(&job.id);
    let live = Live {
        state: state.clone(),
        job: job.id,
        offset,
        next_event: query.events.then_some(0),
        pending: VecDeque::new(),
        wake,
        done: false,
    };
    let stream = futures::stream::unfold(live, |mut live| async move {
        live.next()
            .await
            .map(|event| (Ok::<_, std::convert::Infallible>(event), live))
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Proxies must pass events on at once.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One live log stream.
struct Live {
    state: Arc<AppState>,
    job: JobId,
    /// The log offset sent up to.
    offset: u64,
    /// The next job event to send; `None` when events were not asked for.
    next_event: Option<u64>,
    pending: VecDeque<Event>,
    wake: watch::Receiver<u64>,
    done: bool,
}

impl Live {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            self.wake.borrow_and_update();
            match self.poll().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    // The client reconnects with the last id it got and loses nothing.
                    tracing::warn!(job = %self.job, error = %e, "live log stream ended early");
                    return None;
                }
            }
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(LIVE_POLL).await;
                    }
                }
                _ = tokio::time::sleep(LIVE_POLL) => {}
                _ = self.state.shutdown.cancelled() => return None,
            }
        }
    }

    /// Reads what is new and queues its events; false when there was nothing new.
    async fn poll(&mut self) -> Result<bool, StoreError> {
        let db = &self.state.db;
        let log = db.log_state(&self.job).await?;
        if self.offset < log.size {
            let to = log.size.min(self.offset + LIVE_CHUNK);
            let bytes = db.read_log(&self.job, self.offset..to).await?;
            let last = log.complete && to == log.size;
            let keep = if last {
                bytes.len()
            } else {
                complete_prefix(&bytes)
            };
            if keep > 0 {
                self.offset += keep as u64;
                let text = String::from_utf8_lossy(&bytes[..keep]);
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                self.pending.push_back(
                    Event::default()
                        .event("log")
                        .id(self.offset.to_string())
                        .data(text),
                );
                return Ok(true);
            }
        }
        if let Some(next) = self.next_event {
            let events = db.list_job_events(&self.job, next, EVENT_BATCH).await?;
            if let Some(last) = events.last() {
                self.next_event = Some(last.seq + 1);
                for stored in &events {
                    let mut value: serde_json::Value =
                        serde_json::from_str(&stored.event).unwrap_or(serde_json::Value::Null);
                    if let Some(object) = value.as_object_mut() {
                        object.insert("seq".into(), json!(stored.seq));
                    } else {
                        value = json!({ "seq": stored.seq });
                    }
                    self.pending
                        .push_back(Event::default().event("event").data(value.to_string()));
                }
                return Ok(true);
            }
        }
        if log.complete && self.offset >= log.size {
            let job = db.find_job(&self.job).await?;
            let end = json!({
                "status": job.as_ref().map(|j| j.status.as_str()),
                "conclusion": job.as_ref().and_then(|j| j.conclusion),
                "size": log.size,
                "truncated": log.truncated,
            });
            self.pending.push_back(
                Event::default()
                    .event("end")
                    .id(log.size.max(self.offset).to_string())
                    .data(end.to_string()),
            );
            self.done = true;
            return Ok(true);
        }
        Ok(false)
    }
}

/// How many leading bytes of `bytes` end on a character boundary: an incomplete UTF-8
/// sequence at the end (its rest not uploaded yet) is left for later. Invalid bytes elsewhere
/// are kept (they are sent as U+FFFD).
pub fn complete_prefix(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let byte = bytes[len - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            // A continuation byte: look further back for the lead byte.
            continue;
        }
        let needed = match byte {
            b if b & 0b1110_0000 == 0b1100_0000 => 2,
            b if b & 0b1111_0000 == 0b1110_0000 => 3,
            b if b & 0b1111_1000 == 0b1111_0000 => 4,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let check = |value: &str, size: u64, expected: RangeRequest| {
            assert_eq!(parse_range(value, size), expected, "{value} of {size}");
        };
        check("bytes=0-9", 100, RangeRequest::Partial(0..10));
        check("bytes=90-200", 100, RangeRequest::Partial(90..100));
        check("bytes=10-", 100, RangeRequest::Partial(10..100));
        check("bytes=-10", 100, RangeRequest::Partial(90..100));
        check("bytes=-500", 100, RangeRequest::Partial(0..100));
        check("bytes=100-", 100, RangeRequest::Unsatisfiable);
        check("bytes=100-150", 100, RangeRequest::Unsatisfiable);
        check("bytes=-0", 100, RangeRequest::Unsatisfiable);
        check("bytes=-5", 0, RangeRequest::Unsatisfiable);
        check("bytes=0-", 0, RangeRequest::Unsatisfiable);
        check("bytes=9-3", 100, RangeRequest::Full);
        check("bytes=0-1,5-6", 100, RangeRequest::Full);
        check("lines=0-1", 100, RangeRequest::Full);
        check("bytes=a-b", 100, RangeRequest::Full);
        check("bytes=+1-2", 100, RangeRequest::Full);
    }

    #[test]
    fn a_character_split_across_uploads_waits_for_its_rest() {
        let text = "aé€😀".as_bytes();
        // Whole text: everything.
        assert_eq!(complete_prefix(text), text.len());
        // Cut inside 😀 (4 bytes) at each point: back to before it.
        let emoji_start = text.len() - 4;
        for cut in emoji_start + 1..text.len() {
            assert_eq!(complete_prefix(&text[..cut]), emoji_start, "cut at {cut}");
        }
        // Cut inside € (3 bytes).
        assert_eq!(complete_prefix(&text[..4]), 3);
        assert_eq!(complete_prefix(b""), 0);
        // Invalid bytes that are not an unfinished sequence are kept.
        assert_eq!(complete_prefix(b"ab\xff"), 3);
    }
}
