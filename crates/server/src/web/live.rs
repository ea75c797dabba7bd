//! `GET /jobs/{id}/live`: a job's log and state as server-sent events, for the job page's
//! script (`static/job.js`). It lives beside the pages, behind the same read check (the
//! sign-in cookie works here, where a browser's `EventSource` cannot send an `Authorization`
//! header), and carries the job's state as well as its log.
//!
//! The stream starts at byte `?offset=N` of the log, or at the `Last-Event-ID` header when the
//! browser reconnects after a dropped connection (it wins over `?offset`). Events:
//!
//! | event | id | data |
//! | --- | --- | --- |
//! | `log` | the byte offset after this text | `{"offset": N, "text": "..."}`: the log from byte `N` |
//! | `state` | — | the job's status and steps ([`JobState`]), when they changed |
//! | `end` | — | the final [`JobState`], once the job completed and its whole log was sent; the stream then ends |
//!
//! Text is whole UTF-8 characters: a character split between two stored chunks waits for its
//! second half; invalid bytes become U+FFFD (the offsets still count the stored bytes). New
//! bytes are sent as soon as the agent API stores them ([`notify_log`](super::notify_log));
//! the store is also read every [`POLL`] in case a wake-up came from another server process.

use super::PageError;
use super::auth::DataReader;
use super::jobs::JobState;
use crate::app::AppState;
use crate::store::{JobId, StoreError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// How often the store is read when no wake-up came.
pub const POLL: Duration = Duration::from_secs(5);

/// Log bytes sent in one event at most.
const CHUNK: u64 = 64 * 1024;

/// How long the browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    offset: Option<u64>,
}

/// The data of a `log` event.
#[derive(Debug, Serialize)]
struct LogText<'a> {
    offset: u64,
    text: &'a str,
}

/// The longest prefix of `bytes` that is whole UTF-8 text, and how many bytes it used. A
/// character cut at the end waits for the rest, unless `last` (the log is complete); invalid
/// bytes become U+FFFD.
pub fn decode_prefix(bytes: &[u8], last: bool) -> (String, usize) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), bytes.len()),
        Err(error) => {
            let valid = error.valid_up_to();
            let mut text = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            match error.error_len() {
                Some(bad) => {
                    text.push('\u{fffd}');
                    (text, valid + bad)
                }
                None if last => {
                    text.push('\u{fffd}');
                    (text, bytes.len())
                }
                None => (text, valid),
            }
        }
    }
}

/// Where the stream starts: `Last-Event-ID` (a reconnecting browser), else `?offset`, else 0.
fn start_offset(headers: &HeaderMap, query: &LiveQuery) -> u64 {
    headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .or(query.offset)
        .unwrap_or(0)
}

/// `GET /jobs/{id}/live`.
pub async fn live_log(
    State(state): State<Arc<AppState>>,
    _access: DataReader,
    Path(id): Path<String>,
    query: Result<Query<LiveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let query = query
        .map(|Query(q)| q)
        .map_err(|e| PageError::BadRequest(e.body_text()))?;
    let job_id = JobId::from(id);
    // Unknown jobs are a 404 before the stream starts (the browser then stops retrying).
    state.db.get_job(&job_id).await?;
    let offset = start_offset(&headers, &query);
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(8);
    tokio::spawn(follow(state, job_id, offset, tx));
    let mut response = Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

type Sender = mpsc::Sender<Result<Event, Infallible>>;

async fn send(tx: &Sender, event: Event) -> bool {
    tx.send(Ok(event)).await.is_ok()
}

/// Sends the job's log from `offset` and its state changes until it completes, the client
/// goes away or the server shuts down.
async fn follow(state: Arc<AppState>, job_id: JobId, mut offset: u64, tx: Sender) {
    let mut wake = super::watch_log(&job_id);
    if !send(
        &tx,
        Event::default().retry(RETRY).comment("gantry live log"),
    )
    .await
    {
        return;
    }
    let mut last_state = String::new();
    loop {
        wake.borrow_and_update();
        match step(&state, &job_id, &mut offset, &mut last_state, &tx).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => return,
            Err(StoreError::NotFound { .. }) => return,
            Err(error) => {
                tracing::debug!(job = %job_id, %error, "live log: store read failed, retrying");
            }
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = tx.closed() => return,
            _ = state.shutdown.cancelled() => return,
        }
    }
}

enum Flow {
    Continue,
    Stop,
}

/// One round: the new log bytes, then the state if it changed, then `end` if the job is over.
async fn step(
    state: &AppState,
    job_id: &JobId,
    offset: &mut u64,
    last_state: &mut String,
    tx: &Sender,
) -> Result<Flow, StoreError> {
    // The state is read first: once it says complete, the log it counts is whole.
    let job_state = JobState::load(state, job_id).await?;
    let size = job_state.log_size;
    while *offset < size {
        let end = (*offset + CHUNK).min(size);
        let bytes = state.db.read_log(job_id, *offset..end).await?;
        if bytes.is_empty() {
            break;
        }
        let last = job_state.complete && *offset + bytes.len() as u64 >= size;
        let (text, used) = decode_prefix(&bytes, last);
        if used == 0 {
            break;
        }
        let event = Event::default()
            .event("log")
            .id((*offset + used as u64).to_string())
            .json_data(LogText {
                offset: *offset,
                text: &text,
            });
        let Ok(event) = event else { break };
        if !send(tx, event).await {
            return Ok(Flow::Stop);
        }
        *offset += used as u64;
    }
    let json = serde_json::to_string(&job_state).unwrap_or_default();
    if job_state.complete && *offset >= size {
        send(tx, Event::default().event("end").data(json)).await;
        return Ok(Flow::Stop);
    }
    if json != *last_state {
        if !send(tx, Event::default().event("state").data(json.as_str())).await {
            return Ok(Flow::Stop);
        }
        *last_state = json;
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_whole_characters() {
        let bytes = "aé".as_bytes();
        assert_eq!(decode_prefix(bytes, false), ("aé".to_owned(), 3));
        assert_eq!(decode_prefix(&bytes[..2], false), ("a".to_owned(), 1));
        assert_eq!(
            decode_prefix(&bytes[..2], true),
            ("a\u{fffd}".to_owned(), 2)
        );
        assert_eq!(decode_prefix(&bytes[1..2], false), (String::new(), 0));
        assert_eq!(decode_prefix(b"a\xffb", false), ("a\u{fffd}".to_owned(), 2));
    }

    #[test]
    fn a_reconnecting_browser_resumes_from_its_last_event_id() {
        let mut headers = HeaderMap::new();
        let query = LiveQuery { offset: Some(5) };
        assert_eq!(start_offset(&headers, &query), 5);
        headers.insert("last-event-id", HeaderValue::from_static("42"));
        assert_eq!(start_offset(&headers, &query), 42);
        headers.insert("last-event-id", HeaderValue::from_static("junk"));
        assert_eq!(start_offset(&headers, &LiveQuery::default()), 0);
    }
}
