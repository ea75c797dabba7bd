//! The pieces of the server tests: `gantry server` and `gantry agent` as child processes (killed
//! with SIGKILL when a test ends, however it ends), a git repository in a temporary directory
//! registered over the API with a file:// clone URL, signed webhooks posted over loopback, and
//! polling of the REST API with deadlines.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registration token every test server is started with.
pub const REGISTRATION_TOKEN: &str = "e2e-registration-token";
/// The webhook secret of every registered repository.
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";
/// The environment variable naming the directory where steps leave `<pid>` files, so the test
/// can kill what a killed agent leaves running (see [`StepProcesses`]).
pub const PID_DIR_VAR: &str = "E2E_PIDS";

/// Polls `check` every 25 ms until it gives `Some`; panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `gantry` binary under test.
fn gantry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    // Settings of the developer's own Gantry must not leak into the processes under test.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GANTRY_") {
            command.env_remove(&key);
        }
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// A child process that is killed (SIGKILL) and reaped when dropped; when the test is failing,
/// the end of its stderr is printed first.
pub struct Process {
    name: String,
    child: Option<Child>,
    stderr: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut command: Command, stdout: &Path, stderr: &Path) -> Process {
        let out = std::fs::File::create(stdout).expect("stdout file");
        let err = std::fs::File::create(stderr).expect("stderr file");
        let child = command
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        Process {
            name: name.to_owned(),
            child: Some(child),
            stderr: stderr.to_owned(),
        }
    }

    /// kill -9, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`TERM`, `QUIT`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Waits for the process to exit by itself; its exit code (`None` when a signal ended it),
    /// or a panic after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("not killed");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether it is still running (false once it exited or was killed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.stderr();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- last lines of {} stderr\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }
}

/// Processes the steps of jobs started (each step writes `$$` into a file of the directory
/// named by [`PID_DIR_VAR`]): their process groups are killed when this is dropped, so a step
/// orphaned by a killed agent does not outlive the test.
pub struct StepProcesses {
    dir: tempfile::TempDir,
}

impl StepProcesses {
    pub fn new() -> StepProcesses {
        StepProcesses {
            dir: tempfile::tempdir().expect("pid dir"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pid a step wrote into `<name>.pid`, once it has.
    pub fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for StepProcesses {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            else {
                continue;
            };
            // The step's process group (the runner makes each step a group leader).
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether a process is alive: it exists and is not a zombie waiting to be reaped.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// How a test server is started.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub heartbeat_seconds: f64,
    pub lease_seconds: f64,
    pub extra_args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            heartbeat_seconds: 1.0,
            lease_seconds: 3.0,
            extra_args: Vec::new(),
        }
    }
}

/// `gantry server` on loopback with its own data directory and no embedded agents.
pub struct Server {
    /// First, so the process is killed before its directories are removed (fields are dropped
    /// in order).
    process: Option<Process>,
    pub url: String,
    pub admin_token: String,
    address: Option<SocketAddr>,
    options: ServerOptions,
    data: tempfile::TempDir,
    logs: tempfile::TempDir,
    generation: usize,
    http: reqwest::Client,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(options: ServerOptions) -> Server {
        let mut server = Server {
            process: None,
            url: String::new(),
            admin_token: String::new(),
            address: None,
            options,
            data: tempfile::tempdir().expect("data dir"),
            logs: tempfile::tempdir().expect("log dir"),
            generation: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        };
        server.launch().await;
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Starts the process (on the same address and data directory after the first time) and
    /// waits until it answers /healthz.
    async fn launch(&mut self) {
        let listen = self
            .address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let mut command = gantry();
        command
            .arg("server")
            .arg("--data-dir")
            .arg(self.data.path())
            .args(["--listen", &listen, "--agents", "0"])
            .args(["--registration-token", REGISTRATION_TOKEN])
            .args([
                "--heartbeat-seconds",
                &self.options.heartbeat_seconds.to_string(),
            ])
            .args(["--lease-seconds", &self.options.lease_seconds.to_string()])
            .args(&self.options.extra_args);
        let stdout = self
            .logs
            .path()
            .join(format!("server-{}.stdout", self.generation));
        let stderr = self
            .logs
            .path()
            .join(format!("server-{}.stderr", self.generation));
        let name = format!("server (start {})", self.generation + 1);
        self.process = Some(Process::spawn(&name, command, &stdout, &stderr));
        let first = self.generation == 0;
        self.generation += 1;

        let banner = wait_for("the server's banner", Duration::from_secs(30), || {
            let stdout = stdout.clone();
            let running = self.process.as_mut().is_some_and(Process::is_running);
            async move {
                assert!(running, "the server exited during start");
                let text = std::fs::read_to_string(&stdout).unwrap_or_default();
                let listening = text.lines().find_map(|l| {
                    l.strip_prefix("Gantry server listening on http://")
                        .map(str::trim)
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                })?;
                let token = text.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("export GANTRY_TOKEN=")
                        .map(str::to_owned)
                });
                // The admin token is printed at the first start only, after the address.
                if first && token.is_none() {
                    return None;
                }
                Some((listening, token))
            }
        })
        .await;
        self.address = Some(banner.0);
        self.url = format!("http://{}", banner.0);
        if let Some(token) = banner.1 {
            self.admin_token = token;
        }
        let health = format!("{}/healthz", self.url);
        let http = self.http.clone();
        wait_for("/healthz", Duration::from_secs(30), || {
            let http = http.clone();
            let health = health.clone();
            async move {
                let answer = http.get(&health).send().await.ok()?;
                answer.status().is_success().then_some(())
            }
        })
        .await;
    }

    /// kill -9 the server.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill();
        }
    }

    /// Starts the server again on the same address and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    /// Everything every start of the server wrote to stderr.
    pub fn stderr(&self) -> String {
        (0..self.generation)
            .map(|g| {
                std::fs::read_to_string(self.logs.path().join(format!("server-{g}.stderr")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// An API request with the admin token: status and body (JSON, or the text as a string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// GET, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// POST with a JSON body, expecting 2xx.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// Registers `repo` (webhook secret [`WEBHOOK_SECRET`]) with extra fields (status URL and
    /// token); its id.
    pub async fn register(&self, repo: &GitRepo, extra: Value) -> String {
        let mut body = json!({
            "clone_url": repo.clone_url(),
            "name": repo.name,
            "webhook_secret": WEBHOOK_SECRET,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let answer = self.post("/api/v1/repositories", body).await;
        answer["id"].as_str().expect("repository id").to_owned()
    }

    /// Sets a repository secret.
    pub async fn set_secret(&self, repository_id: &str, name: &str, value: &str) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/api/v1/secrets/{name}?repository={repository_id}"),
                Some(json!({ "value": value })),
            )
            .await;
        assert!(status.is_success(), "secret {name}: {status} {body}");
    }

    /// Posts a GitHub webhook signed with `signature` (None: no signature header).
    pub async fn post_webhook_signed(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> StatusCode {
        let mut request = self
            .http
            .post(format!("{}/hooks/github", self.url))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        match request.send().await {
            Ok(answer) => answer.status(),
            Err(e) => panic!("webhook {delivery}: {e}"),
        }
    }

    /// Posts a GitHub webhook signed with [`WEBHOOK_SECRET`].
    pub async fn post_webhook(&self, event: &str, delivery: &str, body: &Value) -> StatusCode {
        let bytes = serde_json::to_vec(body).expect("json");
        let signature = sign(WEBHOOK_SECRET, &bytes);
        self.post_webhook_signed(event, delivery, &bytes, Some(&signature))
            .await
    }

    /// Every run of a repository (all pages), newest first.
    pub async fn runs(&self, repository_id: &str) -> Vec<Value> {
        let mut runs = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/runs?repository={repository_id}&limit=100");
            if let Some(cursor) = &before {
                path.push_str(&format!("&before={cursor}"));
            }
            let page = self.get(&path).await;
            runs.extend(page["runs"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => before = Some(next.to_owned()),
                None => return runs,
            }
        }
    }

    /// A run with its jobs (`{run, jobs, notes}`).
    pub async fn run(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/runs/{id}")).await
    }

    /// A job's stored log.
    pub async fn log(&self, job_id: &str) -> String {
        let answer = self
            .http
            .get(format!("{}/api/v1/jobs/{job_id}/logs", self.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("log request");
        assert_eq!(answer.status(), StatusCode::OK, "log of {job_id}");
        answer.text().await.expect("log text")
    }

    /// Posts a signed push of `sha` (a new branch head) to `repo` and waits for its run; the
    /// run's id.
    pub async fn push_run(&self, repo: &GitRepo, repo_id: &str, sha: &str, tag: &str) -> String {
        let status = self
            .post_webhook("push", &delivery_id(tag), &repo.push_payload(ZERO_SHA, sha))
            .await;
        assert_eq!(status, 202);
        let run = self
            .wait_run_of(repo_id, sha, Duration::from_secs(30))
            .await;
        run["id"].as_str().expect("run id").to_owned()
    }

    /// A new repository `name` holding `workflow` as `.github/workflows/<name>.yml`,
    /// registered and pushed; its run's id.
    pub async fn run_workflow(&self, name: &str, workflow: &str) -> String {
        let repo = GitRepo::new(name);
        repo.write(&format!(".github/workflows/{name}.yml"), workflow);
        let sha = repo.commit(name);
        let repo_id = self.register(&repo, serde_json::json!({})).await;
        self.push_run(&repo, &repo_id, &sha, name).await
    }

    /// Waits until the stored log of the first job `key` of run `run_id` holds `text`; that
    /// job.
    pub async fn wait_log_of(&self, run_id: &str, key: &str, text: &str) -> Value {
        wait_for(
            &format!("the log of {key} to hold {text:?}"),
            Duration::from_secs(30),
            || async move {
                let detail = self.run(run_id).await;
                let job = jobs_of(&detail, key).first().cloned().cloned()?;
                let log = self.log(job["id"].as_str()?).await;
                log.contains(text).then_some(job)
            },
        )
        .await
    }

    /// The only run of `sha`, once it exists.
    pub async fn wait_run_of(&self, repository_id: &str, sha: &str, timeout: Duration) -> Value {
        wait_for(&format!("a run of {sha}"), timeout, || async move {
            let runs = self.runs(repository_id).await;
            let found: Vec<Value> = runs.into_iter().filter(|r| r["sha"] == sha).collect();
            assert!(found.len() <= 1, "more than one run of {sha}: {found:?}");
            found.into_iter().next()
        })
        .await
    }

    /// A run once it is completed (`{run, jobs, notes}`).
    pub async fn wait_run_completed(&self, run_id: &str, timeout: Duration) -> Value {
        wait_for(
            &format!("run {run_id} to complete"),
            timeout,
            || async move {
                let detail = self.run(run_id).await;
                (detail["run"]["status"] == "completed").then_some(detail)
            },
        )
        .await
    }

    /// A job's detail (`{job, run, steps, annotations}`).
    pub async fn job(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/jobs/{id}")).await
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs deliveries.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `gantry agent` registered with a test server.
pub struct Agent {
    /// First, so the process is killed before its directory is removed.
    process: Process,
    pub name: String,
    _state: tempfile::TempDir,
}

impl Agent {
    /// Starts an agent offering `linux,x64`, whose steps see [`PID_DIR_VAR`].
    pub fn start(server: &Server, name: &str, steps: &StepProcesses, extra: &[&str]) -> Agent {
        let state = tempfile::tempdir().expect("agent state dir");
        let mut command = gantry();
        command
            .arg("agent")
            .args(["--server", &server.url])
            .args(["--token", REGISTRATION_TOKEN])
            .args(["--labels", "linux,x64", "--name", name])
            .arg("--state-dir")
            .arg(state.path())
            .args(extra)
            .env(PID_DIR_VAR, steps.dir());
        let process = Process::spawn(
            &format!("agent {name}"),
            command,
            &state.path().join("stdout"),
            &state.path().join("stderr"),
        );
        Agent {
            process,
            name: name.to_owned(),
            _state: state,
        }
    }

    /// kill -9 the agent (its running step is left behind, as on a host that lost the agent).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Sends `signal` to the agent process.
    pub fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    /// Waits for the agent to exit by itself (see [`Process::wait_exit`]).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.process.wait_exit(timeout).await
    }
}

/// Waits until `count` agents are registered and polling.
pub async fn wait_agents(server: &Server, count: usize) {
    wait_for(
        &format!("{count} agents to register"),
        Duration::from_secs(30),
        || async move {
            let agents = server.get("/api/v1/agents").await;
            let list = agents["agents"].as_array().cloned().unwrap_or_default();
            (list.len() >= count).then_some(())
        },
    )
    .await;
}

/// A git repository in a temporary directory (branch `main`), named `owner/<name>`.
pub struct GitRepo {
    pub name: String,
    dir: tempfile::TempDir,
}

impl GitRepo {
    pub fn new(name: &str) -> GitRepo {
        let repo = GitRepo {
            name: format!("owner/{name}"),
            dir: tempfile::tempdir().expect("repo dir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// A clone of `origin` (a fork), named `<fork_owner>/<name>`.
    pub fn fork(origin: &GitRepo, fork_owner: &str) -> GitRepo {
        let dir = tempfile::tempdir().expect("fork dir");
        let status = Command::new("git")
            .args(["clone", "-q"])
            .arg(origin.path())
            .arg(dir.path())
            .status()
            .expect("git clone");
        assert!(status.success());
        let short = origin.name.split('/').nth(1).unwrap_or("repo");
        GitRepo {
            name: format!("{fork_owner}/{short}"),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn clone_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    pub fn write(&self, relative: &str, text: &str) -> &GitRepo {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    /// Commits everything; the new commit's sha.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn repository_json(&self) -> Value {
        json!({
            "id": 1000,
            "full_name": self.name,
            "clone_url": self.clone_url(),
            "html_url": format!("https://forge.example/{}", self.name),
            "default_branch": "main",
        })
    }

    /// GitHub's push payload for `main` moving from `before` to `after`.
    pub fn push_payload(&self, before: &str, after: &str) -> Value {
        json!({
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "created": before.chars().all(|c| c == '0'),
            "deleted": false,
            "forced": false,
            "repository": self.repository_json(),
            "sender": {"login": "tester"},
            "head_commit": {"id": after, "message": format!("commit {after}")},
        })
    }

    /// A `pull_request` `opened` payload for a pull request from `head` (a branch of `fork`)
    /// into `main` of this repository.
    pub fn pull_request_payload(&self, fork: &GitRepo, head_ref: &str, head_sha: &str) -> Value {
        let base_sha = self.head();
        let mut fork_repo = fork.repository_json();
        fork_repo["id"] = json!(2000);
        json!({
            "action": "opened",
            "number": 7,
            "pull_request": {
                "number": 7,
                "title": "a change from a fork",
                "head": {"ref": head_ref, "sha": head_sha, "repo": fork_repo},
                "base": {"ref": "main", "sha": base_sha, "repo": self.repository_json()},
                "merged": false,
            },
            "repository": self.repository_json(),
            "sender": {"login": "stranger"},
        })
    }
}

/// The zero sha of a push that created its branch.
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// A fresh delivery id.
pub fn delivery_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The jobs of a run detail with `key`, sorted by (leg, attempt).
pub fn jobs_of<'a>(detail: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut jobs: Vec<&Value> = detail["jobs"]
        .as_array()
        .map(|jobs| jobs.iter().filter(|j| j["key"] == key).collect())
        .unwrap_or_default();
    jobs.sort_by_key(|j| (j["leg"].as_u64(), j["attempt"].as_u64()));
    jobs
}

/// The lines of `log` that start with `prefix`.
pub fn lines_with<'a>(log: &'a str, prefix: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.starts_with(prefix)).collect()
}
