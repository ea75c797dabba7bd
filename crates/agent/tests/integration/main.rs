//! The agent against a fake server (in-process axum, scripted faults) and, for network loss,
//! a TCP proxy that cuts connections. Jobs are real: `run:` steps on the host, a real git
//! repository checked out.

mod fake_server;
mod faults;
mod proxy;
mod reporting;
mod shutdown;

use fake_server::FakeServer;
use gantry_agent::{Agent, AgentConfig, AgentError, RetryPolicy, Shutdown};
use gantry_protocol::agent::{JobAssignment, JobEventKind, JobSource};
use gantry_protocol::{JobSpec, StepKind, StepSpec};
use gantry_runner::process::StopPolicy;
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::task::JoinHandle;

pub const SECRET: &str = "s3cr3t-Value-7781";

/// A git repository with one commit.
pub struct Repo {
    pub _dir: tempfile::TempDir,
    pub url: String,
    pub sha: String,
}

pub fn repo() -> Repo {
    let dir = tempfile::tempdir().expect("tempdir");
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("sh");
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    sh("git init -q -b main && echo hello > README && git add README && git commit -qm one");
    let sha = sh("git rev-parse HEAD");
    Repo {
        url: format!("file://{}", dir.path().display()),
        sha,
        _dir: dir,
    }
}

pub fn run(name: &str, script: &str) -> StepSpec {
    StepSpec {
        id: String::new(),
        name: Some(name.into()),
        default_name: format!("Run {name}"),
        condition: "success()".into(),
        kind: StepKind::Run {
            script: script.into(),
        },
        continue_on_error: "false".into(),
        ..StepSpec::default()
    }
}

/// `uses: actions/checkout@v4`: the job's workspace starts empty, as on GitHub.
pub fn checkout_step() -> StepSpec {
    StepSpec {
        id: String::new(),
        default_name: "Run actions/checkout@v4".into(),
        condition: "success()".into(),
        kind: StepKind::Uses {
            uses: "actions/checkout@v4".into(),
            with: Default::default(),
        },
        continue_on_error: "false".into(),
        ..StepSpec::default()
    }
}

/// A job of `steps` on the repository's commit, with [`SECRET`] as secret `API_TOKEN`.
pub fn assignment(job_id: &str, repo: &Repo, steps: Vec<StepSpec>) -> JobAssignment {
    let mut steps = steps;
    for (i, step) in steps.iter_mut().enumerate() {
        if step.id.is_empty() {
            step.id = format!("__run_{i}");
        }
    }
    let spec = JobSpec {
        key: "build".into(),
        job_id: "build".into(),
        name: "build".into(),
        github: serde_json::json!({
            "event_name": "push",
            "ref": "refs/heads/main",
            "ref_name": "main",
            "sha": repo.sha,
            "repository": "acme/widgets",
            "run_id": "7",
            "run_number": "3",
            "run_attempt": "1",
            "event": {"ref": "refs/heads/main"},
        }),
        steps,
        timeout_minutes: 10.0,
        secret_names: vec!["API_TOKEN".into()],
        ..JobSpec::default()
    };
    let mut secrets = IndexMap::new();
    secrets.insert("API_TOKEN".to_owned(), SECRET.to_owned());
    JobAssignment {
        job_id: job_id.into(),
        lease_id: format!("lease-{job_id}"),
        lease_expires_ms: 0,
        spec,
        secrets,
        source: JobSource {
            url: repo.url.clone(),
            sha: repo.sha.clone(),
            git_ref: Some("refs/heads/main".into()),
        },
        heartbeat_interval_ms: 100,
        lease_ms: 1000,
    }
}

/// An agent running in a task.
pub struct TestAgent {
    pub shutdown: Shutdown,
    pub handle: JoinHandle<Result<(), AgentError>>,
    pub dirs: tempfile::TempDir,
}

impl TestAgent {
    pub fn state_dir(&self) -> PathBuf {
        self.dirs.path().join("state")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dirs.path().join("work")
    }

    /// Waits for the agent to return.
    pub async fn join(self, timeout: Duration) -> (Result<(), AgentError>, tempfile::TempDir) {
        let result = tokio::time::timeout(timeout, self.handle)
            .await
            .expect("the agent stops in time")
            .expect("the agent's task does not panic");
        (result, self.dirs)
    }
}

/// Short timings, small chunks.
pub fn config(url: &str, dirs: &Path) -> AgentConfig {
    let mut config = AgentConfig::new(url, dirs.join("state"), dirs.join("work"));
    config.registration_token = Some(fake_server::REGISTRATION_TOKEN.into());
    config.name = "test-agent".into();
    config.labels = vec!["linux".into(), "x64".into()];
    config.heartbeat_interval = Duration::from_millis(100);
    config.retry = RetryPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.5,
    };
    config.log_chunk_size = 4096;
    config.log_linger = Duration::from_millis(20);
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(5);
    config.poll_timeout = Duration::from_secs(5);
    config.stop = StopPolicy {
        interrupt_grace: Duration::from_millis(500),
        terminate_grace: Duration::from_millis(500),
    };
    config.cancel_grace = Duration::from_secs(2);
    config.stop_report_timeout = Duration::from_secs(3);
    config
}

pub fn start_agent(url: &str, tweak: impl FnOnce(&mut AgentConfig)) -> TestAgent {
    let dirs = tempfile::tempdir().expect("tempdir");
    start_agent_in(url, dirs, tweak)
}

pub fn start_agent_in(
    url: &str,
    dirs: tempfile::TempDir,
    tweak: impl FnOnce(&mut AgentConfig),
) -> TestAgent {
    init_tracing();
    let mut config = config(url, dirs.path());
    tweak(&mut config);
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(Agent::run(config, shutdown.clone()));
    TestAgent {
        shutdown,
        handle,
        dirs,
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GANTRY_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

/// Waits until the server holds a `step_started` event of the job.
pub async fn wait_step_started(server: &FakeServer, job_id: &str) {
    server
        .wait_for("the step to start", Duration::from_secs(10), |s| {
            s.jobs.get(job_id).is_some_and(|j| {
                j.events
                    .values()
                    .any(|e| matches!(e.kind, JobEventKind::StepStarted { .. }))
            })
        })
        .await;
}

/// Waits until the server acknowledged a finish of the job.
pub async fn wait_finished(server: &FakeServer, job_id: &str, timeout: Duration) {
    server
        .wait_for("the job's finish", timeout, |s| {
            s.jobs.get(job_id).is_some_and(|j| !j.finishes.is_empty())
        })
        .await;
}

/// The log text of each step, cut at the offsets of its events.
pub fn step_logs(record: &fake_server::JobRecord) -> Vec<(String, String)> {
    let mut starts = std::collections::HashMap::new();
    let mut logs = Vec::new();
    for event in record.events.values() {
        match &event.kind {
            JobEventKind::StepStarted { step, .. } => {
                starts.insert(*step, event.log_offset);
            }
            JobEventKind::StepFinished { step, name, .. } => {
                let start = usize::try_from(starts[step]).expect("small");
                let end = usize::try_from(event.log_offset).expect("small");
                logs.push((
                    name.clone(),
                    String::from_utf8_lossy(&record.log[start..end]).into_owned(),
                ));
            }
            _ => {}
        }
    }
    logs
}

/// Whether the process is gone (or a zombie about to be reaped).
pub fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// What the job slots under `work` hold besides their empty directories, relative to `work`,
/// sorted: after a job, only the runner's recycled files (empty, or the event file) and an empty
/// log spool may be there.
pub fn slot_leftovers(work: &Path) -> Vec<String> {
    fn walk(dir: &Path, work: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                walk(&path, work, out);
                continue;
            }
            let relative = path
                .strip_prefix(work)
                .expect("under work")
                .to_string_lossy()
                .into_owned();
            let size = std::fs::symlink_metadata(&path)
                .map(|m| m.len())
                .unwrap_or(0);
            let recycled = kind.is_file()
                && (relative.contains("/temp/_runner_file_commands/")
                    || (relative.contains("/temp/step_") && relative.ends_with(".sh"))
                    || relative.ends_with("/temp/_github_workflow/event.json")
                    || (relative.ends_with("/log") && size == 0));
            if !recycled {
                out.push(format!("{relative} ({size} bytes)"));
            }
        }
    }
    let mut out = Vec::new();
    walk(work, work, &mut out);
    out.sort();
    out
}
