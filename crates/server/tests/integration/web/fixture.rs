//! A server for the web UI tests: real state over a SQLite file in a temporary directory, the
//! whole router, and rows inserted through the store as the ingester and agents would.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use gantry_protocol::Conclusion;
use gantry_protocol::agent::{JobEvent, JobEventKind};
use gantry_server::app::{AppState, router};
use gantry_server::config::ServerConfig;
use gantry_server::forge::Forge;
use gantry_server::store::{
    Db, Job, JobFinish, JobId, JobStatus, LeaseId, NewAgent, NewJob, NewJobEvent, NewRepository,
    NewRun, Repository, Run, RunStatus, Step, StepStatus, hash_token,
};
use std::sync::Arc;
use tower::ServiceExt as _;

/// Milliseconds since the epoch, as the server sees it.
pub fn now() -> i64 {
    gantry_server::app::now_ms()
}

/// HTML text as a browser shows it: the entities the templates write, decoded.
pub fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// A server under test.
pub struct Site {
    pub state: Arc<AppState>,
    pub router: Router,
    _dir: tempfile::TempDir,
}

/// An answer, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the page is a 200 and returns its body.
    pub fn ok(self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body
    }
}

impl Site {
    pub async fn new() -> Site {
        Site::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut ServerConfig)) -> Site {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = ServerConfig::new(dir.path());
        configure(&mut config);
        let (state, _) = AppState::open(config)
            .await
            .expect("the server state opens");
        Site {
            router: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub async fn request(&self, request: Request<Body>) -> Page {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .expect("the body is read");
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Page {
        self.request(Request::get(uri).body(Body::empty()).expect("a request"))
            .await
    }
}

pub async fn repository(db: &Db, name: &str) -> Repository {
    db.insert_repository(
        &NewRepository {
            name: name.to_owned(),
            clone_url: format!("https://example.invalid/{name}.git"),
            forge: Forge::GitHub,
            webhook_secret: None,
            allow_unsigned: true,
            status_url: None,
            status_token: None,
        },
        now(),
    )
    .await
    .expect("insert a repository")
}

/// A push run on `branch` with `title`.
pub fn new_run(repository: &Repository, title: &str, branch: &str) -> NewRun {
    NewRun {
        repository_id: repository.id.clone(),
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_name: "CI".into(),
        title: title.into(),
        event: "push".into(),
        git_ref: format!("refs/heads/{branch}"),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        context: "{}".into(),
        sources: "[]".into(),
        graph: "{}".into(),
        status: RunStatus::Queued,
        conclusion: None,
        trusted: true,
        concurrency_group: None,
        cancel_in_progress: false,
        attempt: 1,
        delivery_id: None,
    }
}

/// A queued job `key` (leg `leg`) named `name`, needing `labels`.
pub fn new_job(key: &str, leg: u32, name: &str, labels: &[&str]) -> NewJob {
    NewJob {
        key: key.into(),
        leg,
        attempt: 1,
        name: name.into(),
        spec: "{}".into(),
        secret_scope: "{}".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        status: JobStatus::Queued,
        concurrency_group: None,
        timeout_ms: None,
    }
}

pub async fn run(db: &Db, new: &NewRun, jobs: &[NewJob]) -> (Run, Vec<Job>) {
    db.insert_run_with_jobs(new, jobs, &[], now())
        .await
        .expect("insert a run")
}

pub async fn agent(db: &Db, name: &str, labels: &[&str]) -> gantry_server::store::Agent {
    db.insert_agent(
        &NewAgent {
            name: name.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            version: "0.1.0".into(),
            credential_hash: hash_token(&format!("credential of {name}")),
        },
        now(),
    )
    .await
    .expect("insert an agent")
}

/// A job an agent is running: what the agent API would write, through the store.
pub struct Running {
    pub job: JobId,
    pub lease: LeaseId,
    pub next_seq: u64,
}

impl Running {
    /// Claims the oldest queued job for an agent `name` with `labels`.
    pub async fn claim(db: &Db, name: &str, labels: &[&str]) -> Running {
        let agent = agent(db, name, labels).await;
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let claimed = db
            .claim_job(&agent.id, &labels, 600_000, now())
            .await
            .expect("claim")
            .expect("a job to claim");
        Running {
            job: claimed.job.id,
            lease: claimed.lease_id,
            next_seq: 0,
        }
    }

    /// Appends `text` at the end of the log and wakes live streams, as the agent API does.
    pub async fn log(&self, db: &Db, text: &str) {
        let offset = db.log_size(&self.job).await.expect("log size");
        db.append_log_chunk(&self.job, &self.lease, offset, text.as_bytes())
            .await
            .expect("append a log chunk");
        gantry_server::web::notify_log(&self.job);
    }

    async fn event(&mut self, db: &Db, kind: JobEventKind) {
        let offset = db.log_size(&self.job).await.expect("log size");
        let event = JobEvent {
            at_ms: now(),
            log_offset: offset,
            kind,
        };
        db.insert_job_events(
            &self.job,
            &self.lease,
            &[NewJobEvent {
                seq: self.next_seq,
                event: serde_json::to_string(&event).expect("event json"),
            }],
            now(),
        )
        .await
        .expect("insert an event");
        self.next_seq += 1;
        gantry_server::web::notify_log(&self.job);
    }

    /// Step `number` (1-based) starts at the current end of the log.
    pub async fn start_step(&mut self, db: &Db, number: u32, name: &str) {
        let offset = db.log_size(&self.job).await.expect("log size");
        let step = Step {
            number,
            name: name.into(),
            status: StepStatus::Running,
            outcome: None,
            conclusion: None,
            log_start: Some(offset),
            log_end: None,
            started_ms: Some(now()),
            finished_ms: None,
        };
        db.upsert_step(&self.job, &self.lease, &step)
            .await
            .expect("upsert a step");
        self.event(
            db,
            JobEventKind::StepStarted {
                step: number as usize - 1,
                name: name.into(),
            },
        )
        .await;
    }

    /// Step `number` ends at the current end of the log.
    pub async fn finish_step(&mut self, db: &Db, number: u32, conclusion: Conclusion) {
        let offset = db.log_size(&self.job).await.expect("log size");
        let steps = db.list_steps(&self.job).await.expect("steps");
        let mut step = steps
            .into_iter()
            .find(|s| s.number == number)
            .expect("the step started");
        step.status = StepStatus::Completed;
        step.outcome = Some(conclusion);
        step.conclusion = Some(conclusion);
        step.log_end = Some(offset);
        step.finished_ms = Some(now());
        db.upsert_step(&self.job, &self.lease, &step)
            .await
            .expect("upsert a step");
        self.event(
            db,
            JobEventKind::StepFinished {
                step: number as usize - 1,
                name: step.name.clone(),
                outcome: conclusion,
                conclusion,
                duration_ms: 5,
            },
        )
        .await;
    }

    /// An event of another kind (group, annotation, summary) at the current end of the log.
    pub async fn other_event(&mut self, db: &Db, kind: JobEventKind) {
        self.event(db, kind).await;
    }

    /// The agent reports the job's end.
    pub async fn finish(&self, db: &Db, conclusion: Conclusion) {
        let size = db.log_size(&self.job).await.expect("log size");
        db.finish_job(
            &self.job,
            &self.lease,
            &JobFinish {
                conclusion,
                reason: None,
                outputs: Default::default(),
                log_size: size,
            },
            now(),
        )
        .await
        .expect("finish the job");
        gantry_server::web::notify_log(&self.job);
    }
}
