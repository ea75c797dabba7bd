//! The client commands (`gantry repo`, `runs`, `logs`, `cancel`, `token`, `secret`, `queue`,
//! `agents`...) as a user runs them: the real binary against a Gantry server started in this
//! process on 127.0.0.1:0 (a real SQLite store in a temporary directory).

use crate::harness::{Run, binary};
use gantry_protocol::Conclusion;
use gantry_server::app::{AppState, router};
use gantry_server::config::ServerConfig;
use gantry_server::forge::Forge;
use gantry_server::store::{
    Agent, Job, JobFinish, JobStatus, LeaseId, NewAgent, NewJob, NewRepository, NewRun, Repository,
    Run as StoredRun, RunStatus, generate_token, hash_token,
};
use indexmap::IndexMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A server in this process, and a proxy in front of it whose connections a test can cut.
struct LiveServer {
    runtime: tokio::runtime::Runtime,
    state: Arc<AppState>,
    /// The proxy's address: what the commands are given.
    url: String,
    admin: String,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    dir: tempfile::TempDir,
}

impl LiveServer {
    fn start() -> LiveServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(dir.path().join("data"));
        config.public_url = "https://ci.example.com".to_owned();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (state, admin, url) = runtime.block_on(async {
            let (state, _) = AppState::open(config).await.expect("server state");
            let admin = gantry_server::api::ensure_initial_admin_token(&state.db)
                .await
                .expect("store")
                .expect("first token");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let server_addr = listener.local_addr().expect("address");
            let app = router(state.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", proxy.local_addr().expect("address"));
            tokio::spawn(run_proxy(proxy, server_addr, connections.clone()));
            (state, admin, url)
        });
        LiveServer {
            runtime,
            state,
            url,
            admin,
            connections,
            dir,
        }
    }

    /// Cuts every open connection through the proxy (the server goes on).
    fn drop_connections(&self) {
        let mut open = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        for connection in open.drain(..) {
            connection.abort();
        }
    }

    /// `gantry <args>` against this server, with `token` (none: no token at all).
    fn command(&self, args: &[&str], token: Option<&str>) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("GANTRY_SERVER", &self.url)
            .env_remove("GANTRY_TOKEN");
        if let Some(token) = token {
            command.env("GANTRY_TOKEN", token);
        }
        command
    }

    fn gantry(&self, args: &[&str], token: Option<&str>) -> Run {
        let output = self
            .command(args, token)
            .stdin(Stdio::null())
            .output()
            .expect("gantry runs");
        Run { output }
    }

    fn admin(&self, args: &[&str]) -> Run {
        self.gantry(args, Some(&self.admin))
    }

    fn repository(&self, name: &str) -> Repository {
        self.runtime.block_on(async {
            self.state
                .db
                .insert_repository(
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
                .expect("repository")
        })
    }

    /// A run with one queued job `build` needing `labels`.
    fn run_with_job(&self, repo: &Repository, labels: &[&str]) -> (StoredRun, Job) {
        self.runtime.block_on(async {
            let run = NewRun {
                repository_id: repo.id.clone(),
                workflow_file: ".github/workflows/ci.yml".into(),
                workflow_name: "CI".into(),
                title: "Add the frobnicator".into(),
                event: "push".into(),
                git_ref: "refs/heads/main".into(),
                sha: "a".repeat(40),
                context: "{}".into(),
                sources: "[]".into(),
                graph: String::new(),
                status: RunStatus::Queued,
                conclusion: None,
                trusted: true,
                concurrency_group: None,
                cancel_in_progress: false,
                attempt: 1,
                delivery_id: None,
            };
            let job = NewJob {
                key: "build".into(),
                leg: 0,
                attempt: 1,
                name: "build".into(),
                spec: "{}".into(),
                secret_scope: "{}".into(),
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                status: JobStatus::Queued,
                concurrency_group: None,
                timeout_ms: None,
            };
            let (run, mut jobs) = self
                .state
                .db
                .insert_run_with_jobs(&run, &[job], &[], now())
                .await
                .expect("run");
            (run, jobs.remove(0))
        })
    }

    fn agent(&self, name: &str, labels: &[&str]) -> Agent {
        self.runtime.block_on(async {
            self.state
                .db
                .insert_agent(
                    &NewAgent {
                        name: name.into(),
                        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                        version: "1.0".into(),
                        credential_hash: hash_token(&generate_token("c_")),
                    },
                    now(),
                )
                .await
                .expect("agent")
        })
    }

    /// Has an agent start the queued job; returns its lease.
    fn start_job(&self, agent: &Agent) -> LeaseId {
        self.runtime.block_on(async {
            self.state
                .db
                .claim_job(&agent.id, &agent.labels, 600_000, now())
                .await
                .expect("claim")
                .expect("a job to claim")
                .lease_id
        })
    }

    fn append(&self, job: &Job, lease: &LeaseId, offset: u64, text: &str) {
        self.runtime.block_on(async {
            self.state
                .db
                .append_log_chunk(&job.id, lease, offset, text.as_bytes())
                .await
                .expect("append");
        });
        gantry_server::web::notify_log(&job.id);
    }

    fn finish(&self, job: &Job, lease: &LeaseId, size: u64) {
        self.runtime.block_on(async {
            self.state
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
                    now(),
                )
                .await
                .expect("finish");
        });
        gantry_server::web::notify_log(&job.id);
    }
}

/// Forwards each connection to `server`; the handles let a test cut them.
async fn run_proxy(
    listener: tokio::net::TcpListener,
    server: SocketAddr,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let handle = tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(server).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }
}

fn now() -> i64 {
    gantry_server::app::now_ms()
}

#[test]
fn repo_add_prints_the_webhook_url_and_never_the_secret() {
    let server = LiveServer::start();
    let added = server.admin(&[
        "repo",
        "add",
        "https://github.com/acme/widgets.git",
        "--webhook-secret",
        "whsec-0123456789",
    ]);
    added.expect_code(0);
    let out = added.stdout();
    assert!(out.starts_with("Registered acme/widgets (repo_"), "{out}");
    assert!(
        out.contains("Webhook URL: https://ci.example.com/hooks/github"),
        "{out}"
    );
    assert!(!out.contains("whsec-0123456789"));

    let unsigned = server.admin(&["repo", "add", "/srv/git/acme/tools.git"]);
    unsigned.expect_code(0);
    assert!(unsigned.stdout().contains("warning: no webhook secret"));

    let list = server.admin(&["repo", "list"]);
    list.expect_code(0);
    let text = list.stdout();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("acme/widgets") && text.contains("signed"),
        "{text}"
    );
    assert!(
        text.contains("acme/tools") && text.contains("refused (no secret)"),
        "{text}"
    );

    server
        .admin(&["repo", "add", "https://github.com/acme/widgets.git"])
        .expect_code(1);
    server
        .admin(&["repo", "add", "x", "--status-url", "https://api.github.com"])
        .expect_code(2);
}

#[test]
fn refusals_say_what_to_do() {
    let server = LiveServer::start();
    let without = server.gantry(&["token", "list"], None);
    without.expect_code(1);
    assert!(
        without
            .stderr()
            .contains("pass --token or set GANTRY_TOKEN"),
        "{}",
        without.stderr()
    );

    let wrong = server.gantry(&["runs"], Some("gantry_api_wrong"));
    wrong.expect_code(1);
    assert!(
        wrong.stderr().contains("refused the token"),
        "{}",
        wrong.stderr()
    );

    let reader = server.admin(&["token", "create", "--role", "read", "--name", "dash"]);
    reader.expect_code(0);
    let read_token = reader.stdout().trim().to_owned();
    let forbidden = server.gantry(&["token", "list"], Some(&read_token));
    forbidden.expect_code(1);
    assert!(
        forbidden.stderr().contains("admin role"),
        "{}",
        forbidden.stderr()
    );

    let unreachable = Command::new(binary())
        .args(["runs", "--server", "http://127.0.0.1:9"])
        .env_remove("GANTRY_TOKEN")
        .output()
        .expect("gantry");
    let unreachable = Run {
        output: unreachable,
    };
    unreachable.expect_code(1);
    assert!(
        unreachable
            .stderr()
            .contains("could not reach the Gantry server at http://127.0.0.1:9")
    );
    assert!(unreachable.stderr().contains("--server"));

    let missing = server.gantry(&["runs", "run_0000"], None);
    missing.expect_code(1);
    assert!(
        missing.stderr().contains("run run_0000 not found"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn usage_mistakes_exit_2_before_any_request() {
    for args in [
        &["cancel", "42"][..],
        &["logs", "nothing"],
        &["rerun", "job_1"],
        &["dispatch", "acme/site", "deploy.yml", "--input", "novalue"],
        &["runs", "--status", "finished"],
        &["token", "create", "--role", "owner", "--name", "x"],
        &["runs", "--server", "localhost:8080"],
    ] {
        let run = Run {
            output: Command::new(binary())
                .args(args)
                .env("GANTRY_SERVER", "http://127.0.0.1:9")
                .output()
                .expect("gantry"),
        };
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
    }
}

#[test]
fn tokens_are_printed_once_and_work() {
    let server = LiveServer::start();
    let created = server.admin(&["token", "create", "--role", "write", "--name", "ci-bot"]);
    created.expect_code(0);
    let token = created.stdout().trim().to_owned();
    assert!(
        token.starts_with("gantry_api_") && !token.contains('\n'),
        "{token}"
    );
    assert!(created.stderr().contains("shown only this once"));
    server.gantry(&["runs"], Some(&token)).expect_code(0);

    let list = server.admin(&["token", "list"]);
    assert!(list.stdout().contains("ci-bot") && !list.stdout().contains(&token));

    let registration = server.admin(&["agent-token", "create", "--description", "rack 2"]);
    registration.expect_code(0);
    assert!(registration.stdout().trim().starts_with("gantry_reg_"));
    let listed = server.admin(&["agent-token", "list"]);
    assert!(listed.stdout().contains("rack 2") && listed.stdout().contains("valid for"));
}

#[test]
fn secrets_are_read_from_standard_input() {
    let server = LiveServer::start();
    let repo = server.repository("acme/site");
    let mut child = server
        .command(
            &["secret", "set", "npm_token", "--repo", "acme/site"],
            Some(&server.admin),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"npm-secret-value-42\n")
        .expect("write");
    let set = Run {
        output: child.wait_with_output().expect("exit"),
    };
    set.expect_code(0);
    assert_eq!(set.stdout(), "Set NPM_TOKEN for acme/site.\n");
    let stored = server.runtime.block_on(async {
        server
            .state
            .db
            .find_secret(Some(&repo.id), "NPM_TOKEN")
            .await
            .expect("read")
            .expect("stored")
    });
    let opened = server
        .state
        .keys
        .open(
            &gantry_server::secret::secret_aad(Some(repo.id.as_str()), "NPM_TOKEN"),
            &stored.sealed,
        )
        .expect("opens");
    assert_eq!(
        opened, b"npm-secret-value-42",
        "the trailing newline is not part of it"
    );

    let list = server.admin(&["secret", "list", "--repo", "acme/site"]);
    list.expect_code(0);
    assert!(list.stdout().contains("NPM_TOKEN") && !list.stdout().contains("npm-secret-value"));
    server
        .admin(&["secret", "delete", "NPM_TOKEN", "--repo", "acme/site"])
        .expect_code(0);
    server
        .admin(&["secret", "delete", "NPM_TOKEN", "--repo", "acme/site"])
        .expect_code(1);
}

#[test]
fn runs_jobs_and_logs_are_shown() {
    let server = LiveServer::start();
    let repo = server.repository("acme/widgets");
    let (run, job) = server.run_with_job(&repo, &["linux"]);
    let agent = server.agent("box-1", &["linux"]);
    let lease = server.start_job(&agent);
    let log = "building\r\nwarning: x\ndone\n";
    server.append(&job, &lease, 0, log);
    server.finish(&job, &lease, log.len() as u64);

    let list = server.gantry(&["runs", "--repo", "acme/widgets"], None);
    list.expect_code(0);
    let text = list.stdout();
    assert!(text.starts_with("RUN"), "{text}");
    assert!(
        text.contains(run.id.as_str()) && text.contains("acme/widgets"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.gantry(&["runs", "--json"], None).stdout()).expect("JSON");
    assert_eq!(json["runs"][0]["id"], run.id.to_string());

    let shown = server.gantry(&["runs", run.id.as_str()], None);
    shown.expect_code(0);
    assert!(shown.stdout().contains(job.id.as_str()) && shown.stdout().contains("box-1"));

    // Raw: the exact bytes. Followed: to the end, then exit.
    let raw = server.gantry(&["logs", job.id.as_str()], None);
    raw.expect_code(0);
    assert_eq!(raw.stdout(), log);
    let followed = server.gantry(&["logs", "-f", job.id.as_str()], None);
    followed.expect_code(0);
    assert_eq!(followed.stdout(), "building\nwarning: x\ndone\n");
    let of_run = server.gantry(&["logs", run.id.as_str()], None);
    of_run.expect_code(0);
    assert_eq!(
        of_run.stdout(),
        format!("==> build ({}) <==\n{log}", job.id)
    );
}

#[test]
fn following_a_log_survives_a_dropped_connection() {
    let server = LiveServer::start();
    let repo = server.repository("acme/live");
    let (_run, job) = server.run_with_job(&repo, &["linux"]);
    let agent = server.agent("box-1", &["linux"]);
    let lease = server.start_job(&agent);
    server.append(&job, &lease, 0, "one\n");

    let mut child = server
        .command(&["logs", "-f", job.id.as_str()], None)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry");
    // Collect its output as it comes, to know when it has printed the first line.
    let printed = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = {
        let printed = printed.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 256];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buffer) {
                if n == 0 {
                    break;
                }
                printed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buffer[..n]);
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !printed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ends_with(b"one\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first line never came"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Cut the connection, write more while it is away, and let it come back.
    server.drop_connections();
    server.append(&job, &lease, 4, "two\n");
    std::thread::sleep(Duration::from_millis(300));
    server.drop_connections();
    server.append(&job, &lease, 8, "three\n");
    server.finish(&job, &lease, 14);
    let output = child.wait_with_output().expect("exit");
    reader.join().expect("reader");
    let run = Run { output };
    run.expect_code(0);
    let printed =
        String::from_utf8_lossy(&printed.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert_eq!(printed, "one\ntwo\nthree\n", "nothing lost, nothing twice");
    assert!(
        run.stderr().contains("resuming at byte 4"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_queue_and_agents_explain_themselves() {
    let server = LiveServer::start();
    let repo = server.repository("acme/gpu");
    let (_run, job) = server.run_with_job(&repo, &["gpu"]);
    server.agent("box-1", &["linux"]);
    let queue = server.gantry(&["queue"], None);
    queue.expect_code(0);
    let text = queue.stdout();
    assert!(text.starts_with("JOB"), "{text}");
    assert!(
        text.contains(job.id.as_str()) && text.contains("no agent has labels gpu"),
        "{text}"
    );

    let agents = server.gantry(&["agents"], None);
    agents.expect_code(0);
    let text = agents.stdout();
    assert!(
        text.contains("box-1") && text.contains("linux") && text.contains("idle"),
        "{text}"
    );

    let cancelled = server.gantry(&["cancel", job.id.as_str()], Some(&server.admin));
    cancelled.expect_code(0);
    assert!(
        cancelled
            .stdout()
            .contains("1 job cancelled before starting")
    );
    let again = server.gantry(&["cancel", job.id.as_str()], Some(&server.admin));
    again.expect_code(1);
    assert!(
        again.stderr().contains("already completed"),
        "{}",
        again.stderr()
    );
}

#[test]
fn client_commands_have_examples_in_their_help() {
    for command in [
        "repo",
        "runs",
        "logs",
        "cancel",
        "rerun",
        "dispatch",
        "agents",
        "queue",
        "secret",
        "token",
        "agent-token",
    ] {
        let help = Command::new(binary())
            .args([command, "--help"])
            .output()
            .expect("gantry");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{command}");
        assert!(text.contains("Examples:"), "{command}: {text}");
        assert!(
            text.contains("--server") && text.contains("GANTRY_TOKEN"),
            "{command}"
        );
    }
}
