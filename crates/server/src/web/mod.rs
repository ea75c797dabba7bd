//! The web UI: server-rendered pages (askama templates compiled into the binary, from
//! `crates/server/templates`), one small hand-written script and a style sheet (embedded, see
//! [`assets`]), and live logs over server-sent events ([`live`]). Pages read the store and never
//! change anything: actions (cancel, re-run) belong to the REST API. Pages are readable
//! without JavaScript; the script only makes a running job's page follow its log.
//!
//! | path | page |
//! | --- | --- |
//! | `/` | recent runs of every repository; `?repo=owner/name&branch=main&status=completed&before=CURSOR` |
//! | `/repos/{owner}/{name}` | runs of one repository (same filters); `/repositories/{id}` redirects here |
//! | `/runs/{id}` | a run: its jobs in needs order, matrix legs, attempts, jobs that never ran and why |
//! | `/jobs/{id}` | a job: steps, annotations, the log split by step with groups; live while it runs |
//! | `/jobs/{id}/log.txt` | the raw log (text/plain) |
//! | `/jobs/{id}/state` | the job's status and steps as JSON (what the live stream's `state` events carry) |
//! | `/jobs/{id}/sections` | the job page's log part alone (the script swaps it in when the job ends) |
//! | `/jobs/{id}/live` | the live log stream, see [`live`] |
//! | `/agents`, `/queue` | agents; queued jobs and why each waits |
//! | `/login`, `/logout` | the token form when anonymous reading is off, see [`auth`] |
//! | `/static/{file}` | the embedded style sheet and script |
//!
//! Everything shown is escaped by the templates, or by [`ansi`] and [`log_view`] for log
//! markup built in Rust. Secrets never reach a page: the store holds them sealed and pages do
//! not read them; log text was masked by the agent before upload. Every answer carries a
//! Content-Security-Policy that allows only this server's own script and style sheet.
//!
//! This module also keeps the per-job wake-ups ([`notify_log`], [`watch_log`]) that the agent
//! API pulls when a job's log, events or state change, so live streams send news at once.
//! docs/web.md describes the pages, live logs and sign-in for people.

mod agents;
pub mod ansi;
mod assets;
pub mod auth;
pub mod display;
mod error;
mod jobs;
pub mod live;
pub mod log_view;
mod queue;
mod runs;

pub use error::PageError;

use crate::app::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

use crate::store::JobId;

/// Per-job log version counters that live log streams watch.
fn registry() -> &'static Mutex<HashMap<String, watch::Sender<u64>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, watch::Sender<u64>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Tells live log streams of `job` that its log or state changed.
pub fn notify_log(job: &JobId) {
    let map = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(sender) = map.get(job.as_str()) {
        sender.send_modify(|v| *v += 1);
    }
}

/// A receiver that changes whenever `job`'s log changes.
pub fn watch_log(job: &JobId) -> watch::Receiver<u64> {
    let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, sender| sender.receiver_count() > 0);
    map.entry(job.as_str().to_owned())
        .or_insert_with(|| watch::channel(0).0)
        .subscribe()
}

/// The web UI's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(runs::list_runs))
        .route("/repos/{*name}", get(runs::list_repository_runs))
        .route("/repositories/{id}", get(runs::redirect_repository))
        .route("/runs/{id}", get(runs::show_run))
        .route("/jobs/{id}", get(jobs::show_job))
        .route("/jobs/{id}/state", get(jobs::job_state))
        .route("/jobs/{id}/sections", get(jobs::job_sections))
        .route("/jobs/{id}/log.txt", get(jobs::raw_log))
        .route("/jobs/{id}/live", get(live::live_log))
        .route("/agents", get(agents::list_agents))
        .route("/queue", get(queue::show_queue))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/{file}", get(assets::serve_asset))
        .layer(axum::middleware::from_fn(security_headers))
}

/// What the page layout (`base.html`) needs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark: `runs`, `queue`, `agents`, or empty.
    pub nav: &'static str,
    pub css: &'static str,
    pub js: &'static str,
    /// Show the sign-out button (the reader signed in with a token).
    pub sign_out: bool,
}

impl Layout {
    pub fn new(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            nav: "",
            css: assets::css_url(),
            js: assets::js_url(),
            sign_out: false,
        }
    }

    fn page(title: impl Into<String>, nav: &'static str, access: &auth::Reader) -> Layout {
        Layout {
            nav,
            sign_out: access.signed_in,
            ..Layout::new(title)
        }
    }
}

/// The headers every web answer carries: only this server's own script, style sheet and
/// connections; no framing; no MIME sniffing; no referrer to other sites.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    response
}
