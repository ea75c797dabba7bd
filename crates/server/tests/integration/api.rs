//! The REST API through the router (`app::router(state).oneshot(request)`), on a real SQLite
//! store in a temporary directory. Runs are planned from real workflow text and driven to
//! their end through the store and the scheduler, as agents and the server would.

mod auth;
mod dispatch;
mod logs;
mod queue;
mod repositories;
mod runs;
mod secrets;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use gantry_protocol::Conclusion;
use gantry_server::app::{AppState, router};
use gantry_server::config::ServerConfig;
use gantry_server::forge::Forge;
use gantry_server::run_state::{self, GraphDoc};
use gantry_server::store::{
    Agent, ApiRole, Job, JobFinish, JobStatus, NewAgent, NewRepository, NewRun, Repository, Run,
    RunStatus, generate_token, hash_token,
};
use gantry_workflow::plan::{RunContext, RunGraph, plan_run};
use gantry_workflow::trigger::Event;
use indexmap::IndexMap;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// A server state on a fresh data directory, with a token of each role.
pub struct TestServer {
    pub state: Arc<AppState>,
    pub read: String,
    pub write: String,
    pub admin: String,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers, and the body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Answer {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
}

impl TestServer {
    pub async fn new() -> TestServer {
        TestServer::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(dir.path());
        config.public_url = "https://ci.example.com".to_owned();
        configure(&mut config);
        let (state, _) = AppState::open(config).await.expect("state opens");
        let mut server = TestServer {
            state,
            read: String::new(),
            write: String::new(),
            admin: String::new(),
            _dir: dir,
        };
        server.read = server.token(ApiRole::Read, "reader").await;
        server.write = server.token(ApiRole::Write, "writer").await;
        server.admin = server.token(ApiRole::Admin, "admin").await;
        server
    }

    /// A new API token with `role`.
    pub async fn token(&self, role: ApiRole, name: &str) -> String {
        let token = generate_token("gantry_api_");
        self.state
            .db
            .insert_api_token(name, &hash_token(&token), role, now())
            .await
            .expect("token stored");
        token
    }

    /// Sends a request through the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = router(self.state.clone())
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    /// A repository `owner/<name>` registered directly in the store.
    pub async fn repository(&self, name: &str) -> Repository {
        self.state
            .db
            .insert_repository(
                &NewRepository {
                    name: format!("owner/{name}"),
                    clone_url: format!("https://example.invalid/owner/{name}.git"),
                    forge: Forge::GitHub,
                    webhook_secret: None,
                    allow_unsigned: true,
                    status_url: None,
                    status_token: None,
                },
                now(),
            )
            .await
            .expect("repository stored")
    }

    /// An agent with these labels.
    pub async fn agent(&self, name: &str, labels: &[&str]) -> Agent {
        self.state
            .db
            .insert_agent(
                &NewAgent {
                    name: name.to_owned(),
                    labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                    version: "test".to_owned(),
                    credential_hash: hash_token(&generate_token("cred_")),
                },
                now(),
            )
            .await
            .expect("agent stored")
    }

    /// A run of `yaml` (as `.github/workflows/ci.yml`) for a push to `branch`, planned and
    /// stored as the ingester does.
    pub async fn planned_run(&self, repo: &Repository, branch: &str, yaml: &str) -> Run {
        let file = ".github/workflows/ci.yml";
        let sources = vec![(file.to_owned(), yaml.to_owned())];
        let workflows = run_state::parse_sources(&sources);
        assert_eq!(workflows.len(), 1, "the test workflow parses");
        let mut context = RunContext::new(Event {
            name: "push".into(),
            git_ref: Some(format!("refs/heads/{branch}")),
            ..Event::default()
        });
        context.repository = repo.name.clone();
        let plan = plan_run(&workflows, &context).workflows.remove(0);
        let mut graph = RunGraph::new(&plan, &workflows).expect("runnable");
        let effects = run_state::effects(graph.next_actions(), &self.state.config, &workflows);
        let doc = GraphDoc {
            journal: Vec::new(),
            notes: effects.notes,
        };
        let new = NewRun {
            repository_id: repo.id.clone(),
            workflow_file: file.to_owned(),
            workflow_name: plan.name.clone(),
            title: "a commit".to_owned(),
            event: "push".to_owned(),
            git_ref: format!("refs/heads/{branch}"),
            sha: "0".repeat(40),
            context: serde_json::to_string(&context).expect("context"),
            sources: serde_json::to_string(&sources).expect("sources"),
            graph: serde_json::to_string(&doc).expect("graph"),
            status: RunStatus::Queued,
            conclusion: None,
            trusted: true,
            concurrency_group: None,
            cancel_in_progress: false,
            attempt: 1,
            delivery_id: None,
        };
        let (run, _) = self
            .state
            .db
            .insert_run_with_jobs(&new, &effects.new_jobs, &[], now())
            .await
            .expect("run stored");
        run
    }

    /// Has `agent` claim a queued job; `None` when none fits.
    pub async fn claim(&self, agent: &Agent) -> Option<(Job, gantry_server::store::LeaseId)> {
        self.state
            .db
            .claim_job(&agent.id, &agent.labels, 60_000, now())
            .await
            .expect("claim")
            .map(|claimed| (claimed.job, claimed.lease_id))
    }

    /// Runs every job of `run` to its end with an agent labelled `linux`: each job's result
    /// comes from `outcome(job)`; the scheduler advances the graph between jobs.
    pub async fn run_to_end(
        &self,
        run: &Run,
        outcome: impl Fn(&Job) -> (Conclusion, IndexMap<String, String>),
    ) -> Run {
        let agent = self.agent("runner", &["linux"]).await;
        for _ in 0..100 {
            gantry_server::scheduler::round(&self.state)
                .await
                .expect("scheduler round");
            let current = self.state.db.get_run(&run.id).await.expect("run");
            if current.status == RunStatus::Completed {
                return current;
            }
            if let Some((job, lease)) = self.claim(&agent).await {
                let (conclusion, outputs) = outcome(&job);
                self.state
                    .db
                    .finish_job(
                        &job.id,
                        &lease,
                        &JobFinish {
                            conclusion,
                            reason: None,
                            outputs,
                            log_size: 0,
                        },
                        now(),
                    )
                    .await
                    .expect("finish");
            }
        }
        panic!("run {} did not end", run.id);
    }

    /// The jobs of a run that are queued now.
    pub async fn queued_jobs(&self, run: &Run) -> Vec<Job> {
        self.state
            .db
            .list_jobs(&run.id)
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.status == JobStatus::Queued)
            .collect()
    }
}

pub fn now() -> i64 {
    gantry_server::app::now_ms()
}

/// Job outputs from pairs.
pub fn outputs(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
