//! Raw logs with HTTP Range, and live logs over server-sent events that resume from a byte
//! offset.

use super::TestServer;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use gantry_protocol::Conclusion;
use gantry_server::store::{Job, JobFinish, LeaseId};
use indexmap::IndexMap;
use std::time::Duration;

const ONE_JOB: &str = "on: push\njobs:\n  build:\n    runs-on: linux\n    steps: [run: make]\n";

/// A running job and its lease.
async fn running_job(server: &TestServer) -> (Job, LeaseId) {
    let repo = server.repository("logs").await;
    server.planned_run(&repo, "main", ONE_JOB).await;
    let agent = server.agent("a", &["linux"]).await;
    server.claim(&agent).await.expect("the job starts")
}

async fn append(server: &TestServer, job: &Job, lease: &LeaseId, offset: u64, text: &[u8]) {
    server
        .state
        .db
        .append_log_chunk(&job.id, lease, offset, text)
        .await
        .expect("append");
    gantry_server::web::notify_log(&job.id);
}

async fn finish(server: &TestServer, job: &Job, lease: &LeaseId, size: u64) {
    server
        .state
        .db
        .finish_job(
            &job.id,
            lease,
            &JobFinish {
                conclusion: Conclusion::Success,
                reason: None,
                outputs: IndexMap::new(),
                log_size: size,
            },
            super::now(),
        )
        .await
        .expect("finish");
    gantry_server::web::notify_log(&job.id);
}

async fn ranged(server: &TestServer, job: &Job, range: &str) -> super::Answer {
    server
        .send(
            Request::builder()
                .uri(format!("/api/v1/jobs/{}/logs", job.id))
                .header(header::RANGE, range)
                .body(Body::empty())
                .expect("request"),
        )
        .await
}

#[tokio::test]
async fn raw_logs_honour_byte_ranges() {
    let server = TestServer::new().await;
    let (job, lease) = running_job(&server).await;
    let log = "hello world\nsecond line\n";
    append(&server, &job, &lease, 0, log.as_bytes()).await;
    let size = log.len();

    let full = server
        .get(&format!("/api/v1/jobs/{}/logs", job.id), None)
        .await;
    full.expect(StatusCode::OK);
    assert_eq!(full.body, log);
    assert_eq!(full.headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(full.headers["x-gantry-log-complete"], "false");
    assert!(
        full.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );

    let first = ranged(&server, &job, "bytes=0-4").await;
    first.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(first.body, "hello");
    assert_eq!(
        first.headers[header::CONTENT_RANGE],
        format!("bytes 0-4/{size}")
    );

    let from = ranged(&server, &job, "bytes=12-").await;
    from.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(from.body, "second line\n");

    let last = ranged(&server, &job, "bytes=-5").await;
    last.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(last.body, "line\n");
    assert_eq!(
        last.headers[header::CONTENT_RANGE],
        format!("bytes {}-{}/{size}", size - 5, size - 1)
    );

    let past = ranged(&server, &job, &format!("bytes={size}-")).await;
    past.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.headers[header::CONTENT_RANGE],
        format!("bytes */{size}")
    );

    // A malformed range is ignored: the whole log.
    let ignored = ranged(&server, &job, "bytes=5-1").await;
    ignored.expect(StatusCode::OK);
    assert_eq!(ignored.body, log);

    finish(&server, &job, &lease, size as u64).await;
    let done = server
        .get(&format!("/api/v1/jobs/{}/logs", job.id), None)
        .await;
    assert_eq!(done.headers["x-gantry-log-complete"], "true");
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// Parses a server-sent event stream (as a browser does: `data` lines joined by `\n`).
fn parse_sse(text: &str) -> Vec<Sse> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut event = Sse::default();
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event.event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("id:") {
                event.id = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if data.is_empty() && event.event.is_empty() {
            continue;
        }
        event.data = data.join("\n");
        events.push(event);
    }
    events
}

/// Reads a live stream until it ends (or panics after a while).
async fn read_stream(server: &TestServer, request: Request<Body>) -> Vec<Sse> {
    let response =
        tower::ServiceExt::oneshot(gantry_server::app::router(server.state.clone()), request)
            .await
            .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let bytes = tokio::time::timeout(
        Duration::from_secs(20),
        axum::body::to_bytes(response.into_body(), 1024 * 1024),
    )
    .await
    .expect("the stream ends once the job has completed")
    .expect("body");
    parse_sse(&String::from_utf8_lossy(&bytes))
}

fn live(job: &Job, query: &str, last_event_id: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri(format!("/api/v1/jobs/{}/logs/live{query}", job.id));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.body(Body::empty()).expect("request")
}

fn log_text(events: &[Sse]) -> String {
    events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.data.as_str())
        .collect()
}

#[tokio::test]
async fn a_completed_log_streams_whole_then_ends_and_resumes_from_an_offset() {
    let server = TestServer::new().await;
    let (job, lease) = running_job(&server).await;
    let log = "one\ntwo\nthree\n";
    append(&server, &job, &lease, 0, log.as_bytes()).await;
    finish(&server, &job, &lease, log.len() as u64).await;

    let events = read_stream(&server, live(&job, "", None)).await;
    assert_eq!(log_text(&events), log);
    let last_log = events.iter().rfind(|e| e.event == "log").expect("log");
    assert_eq!(last_log.id.as_deref(), Some(log.len().to_string().as_str()));
    let end = events.last().expect("events");
    assert_eq!(end.event, "end");
    let end_data: serde_json::Value = serde_json::from_str(&end.data).expect("json");
    assert_eq!(end_data["conclusion"], "success");
    assert_eq!(end_data["size"], log.len());

    // Resuming: Last-Event-ID wins over ?offset=.
    let resumed = read_stream(&server, live(&job, "?offset=0", Some("4"))).await;
    assert_eq!(log_text(&resumed), "two\nthree\n");
    let by_query = read_stream(&server, live(&job, "?offset=8", None)).await;
    assert_eq!(log_text(&by_query), "three\n");
    let at_end = read_stream(&server, live(&job, "", Some(&log.len().to_string()))).await;
    assert_eq!(log_text(&at_end), "");
    assert_eq!(at_end.last().map(|e| e.event.as_str()), Some("end"));

    let bad = server.send(live(&job, "", Some("not-an-offset"))).await;
    bad.expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_live_log_follows_new_bytes_and_a_split_character_waits_for_its_rest() {
    let server = TestServer::new().await;
    let (job, lease) = running_job(&server).await;
    append(&server, &job, &lease, 0, b"start\n").await;

    let response = tower::ServiceExt::oneshot(
        gantry_server::app::router(server.state.clone()),
        live(&job, "", None),
    )
    .await
    .expect("answer");
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    let mut next = async |seen: &mut String, want: &str| {
        while !seen.contains(want) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .unwrap_or_else(|_| panic!("waited for {want:?}, got {seen:?}"))
                .expect("the stream goes on")
                .expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    next(&mut seen, "start").await;

    // "é" arrives in two uploads: nothing is sent until it is whole.
    let e_acute = "é".as_bytes();
    append(&server, &job, &lease, 6, &[b'x', e_acute[0]]).await;
    append(&server, &job, &lease, 8, &[e_acute[1], b'\r', b'\n']).await;
    next(&mut seen, "x").await;
    append(&server, &job, &lease, 11, b"done\n").await;
    finish(&server, &job, &lease, 16).await;
    next(&mut seen, "event: end").await;
    let events = parse_sse(&seen);
    assert_eq!(log_text(&events), "start\nxé\ndone\n");
    assert!(!seen.contains('\u{FFFD}'), "no character was cut: {seen:?}");
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| {
            e.id.as_deref()
                .and_then(|i| i.parse().ok())
                .expect("numeric id")
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids.last(), Some(&16));
}

#[tokio::test]
async fn job_events_ride_along_when_asked_for() {
    let server = TestServer::new().await;
    let (job, lease) = running_job(&server).await;
    let event = serde_json::json!({
        "at_ms": 1, "log_offset": 0, "event": "step_started", "step": 0, "name": "make"
    });
    server
        .state
        .db
        .insert_job_events(
            &job.id,
            &lease,
            &[gantry_server::store::NewJobEvent {
                seq: 0,
                event: event.to_string(),
            }],
            super::now(),
        )
        .await
        .expect("event");
    finish(&server, &job, &lease, 0).await;
    let events = read_stream(&server, live(&job, "?events=true", None)).await;
    let step = events
        .iter()
        .find(|e| e.event == "event")
        .expect("an event event");
    let data: serde_json::Value = serde_json::from_str(&step.data).expect("json");
    assert_eq!(data["seq"], 0);
    assert_eq!(data["event"], "step_started");
    assert_eq!(step.id, None, "events do not move the resume offset");
    let without = read_stream(&server, live(&job, "", None)).await;
    assert!(without.iter().all(|e| e.event != "event"));
}
