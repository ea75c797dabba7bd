//! The live log stream (`/jobs/{id}/live`): new text as it is stored, state changes, the end,
//! and resuming from the last event id.

use super::fixture::{Running, Site, new_job, new_run, repository, run};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt as _;
use gantry_protocol::Conclusion;
use std::time::Duration;
use tower::ServiceExt as _;

/// An open event stream, read as text.
struct Stream {
    body: axum::body::BodyDataStream,
    text: String,
}

impl Stream {
    async fn open(site: &Site, uri: &str, last_event_id: Option<&str>) -> Stream {
        let mut request = Request::get(uri);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = site
            .router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().expect("ascii"),
            "text/event-stream"
        );
        Stream {
            body: response.into_body().into_data_stream(),
            text: String::new(),
        }
    }

    /// Reads until the text received so far contains `needle` (at most 5 s).
    async fn until(&mut self, needle: &str) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.text.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} within 5 s; got:\n{}", self.text))
                .unwrap_or_else(|| panic!("the stream ended before {needle:?}:\n{}", self.text))
                .expect("a chunk");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
        &self.text
    }

    /// Reads until the stream ends (at most 5 s).
    async fn read_to_end(&mut self) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => panic!("the stream did not end within 5 s:\n{}", self.text),
                Ok(None) => return &self.text,
                Ok(Some(chunk)) => {
                    self.text
                        .push_str(&String::from_utf8_lossy(&chunk.expect("a chunk")));
                }
            }
        }
    }
}

#[tokio::test]
async fn the_stream_sends_new_text_and_state_then_ends_with_the_final_state() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let mut job = Running::claim(db, "runner", &[]).await;
    job.log(db, "before\n").await;

    let mut stream = Stream::open(&site, &format!("/jobs/{}/live?offset=7", job.job), None).await;
    stream.until("event: state").await;
    assert!(
        !stream.text.contains("before"),
        "the stream starts at ?offset"
    );
    assert!(stream.text.contains("retry: 2000"));

    job.start_step(db, 1, "Compile").await;
    job.log(db, "compiling <x>\n").await;
    let text = stream.until("compiling").await;
    assert!(text.contains("event: log\n"));
    assert!(
        text.contains("id: 21\n"),
        "the id is the offset after the text: {text}"
    );
    assert!(
        text.contains(r#"data: {"offset":7,"text":"compiling <x>\n"}"#),
        "{text}"
    );
    stream.until("\"name\":\"Compile\"").await;

    job.log(db, "done\n").await;
    job.finish_step(db, 1, Conclusion::Success).await;
    job.finish(db, Conclusion::Success).await;
    let text = stream.read_to_end().await;
    let end = text.find("event: end").expect("an end event");
    assert!(
        text.find("done").expect("the last text") < end,
        "all text comes before the end"
    );
    assert!(text[end..].contains("\"label\":\"success\""), "{text}");
    assert!(text[end..].contains("\"complete\":true"));
}

#[tokio::test]
async fn a_reconnecting_browser_resumes_from_its_last_event_id() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let job = Running::claim(db, "runner", &[]).await;
    job.log(db, "abc\ndéf\n").await;
    job.finish(db, Conclusion::Success).await;

    // Last-Event-ID wins over the offset the page first asked for.
    let mut stream = Stream::open(
        &site,
        &format!("/jobs/{}/live?offset=0", job.job),
        Some("4"),
    )
    .await;
    let text = stream.read_to_end().await;
    assert!(
        text.contains(r#"data: {"offset":4,"text":"déf\n"}"#),
        "{text}"
    );
    assert!(!text.contains("abc"));
    assert!(text.contains("id: 9\n"), "offsets count bytes: {text}");
    assert!(text.contains("event: end"));

    // A browser that has everything gets the end at once.
    let mut stream = Stream::open(&site, &format!("/jobs/{}/live", job.job), Some("9")).await;
    let text = stream.read_to_end().await;
    assert!(!text.contains("event: log"));
    assert!(text.contains("event: end"));
}

#[tokio::test]
async fn a_character_split_between_uploads_is_sent_whole() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let job = Running::claim(db, "runner", &[]).await;
    let euro = "€".as_bytes();
    db.append_log_chunk(&job.job, &job.lease, 0, &[b'a', euro[0]])
        .await
        .expect("first half");
    let mut stream = Stream::open(&site, &format!("/jobs/{}/live", job.job), None).await;
    stream.until(r#""text":"a"}"#).await;
    db.append_log_chunk(&job.job, &job.lease, 2, &[euro[1], euro[2], b'\n'])
        .await
        .expect("second half");
    gantry_server::web::notify_log(&job.job);
    let text = stream.until("€").await;
    assert!(
        text.contains(r#"data: {"offset":1,"text":"€\n"}"#),
        "{text}"
    );
}
