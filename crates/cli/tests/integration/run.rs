//! `gantry run` as a user sees it: real git repositories, real step processes, the terminal
//! output, the exit code and the files kept under `.gantry/runs/`. Steps that must leave a
//! trace outside their (temporary) workspace write into a scratch folder passed as `$OUT`.

mod actions;
mod exit_codes;
mod filters;
mod graph;
mod injection;
mod interrupt;
mod limits;
mod output;
mod secrets;
mod store;
mod workspace;

use crate::harness::{Run, TestRepo, gantry_command};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A repository whose only workflow is `.github/workflows/ci.yml`, committed.
fn repo_with(workflow: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".github/workflows/ci.yml", workflow);
    repo.commit("init");
    repo
}

/// A folder outside the repository where steps leave marker files (`$OUT` in the steps).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("scratch dir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// `--env OUT=<this folder>`, for `gantry` arguments.
    fn env_arg(&self) -> String {
        format!("OUT={}", self.path().display())
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name))
            .unwrap_or_else(|e| panic!("{name} was not written by the steps: {e}"))
    }

    fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }
}

/// Runs `gantry run <args>` with `--env OUT=<scratch>`.
fn run_with_scratch(repo: &TestRepo, scratch: &Scratch, args: &[&str]) -> Run {
    let env = scratch.env_arg();
    let mut all = vec!["run", "--env", env.as_str()];
    all.extend_from_slice(args);
    repo.gantry(&all)
}

/// `.gantry/runs/<n>` of a repository.
fn run_dir(repo: &TestRepo, number: u32) -> PathBuf {
    repo.path().join(".gantry/runs").join(number.to_string())
}

/// The events of a stored run, parsed.
fn stored_events(repo: &TestRepo, number: u32) -> Vec<Value> {
    let path = run_dir(repo, number).join("events.jsonl");
    let text = std::fs::read_to_string(&path).expect("events.jsonl");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("every line of events.jsonl is JSON"))
        .collect()
}

/// The stored summary of a run, parsed.
fn stored_summary(repo: &TestRepo, number: u32) -> Value {
    let path = run_dir(repo, number).join("summary.json");
    serde_json::from_slice(&std::fs::read(path).expect("summary.json")).expect("summary JSON")
}

/// The summary's entry for the job shown as `name`.
fn summary_job<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job named {name:?} in {summary:#}"))
}

/// Waits until `path` exists (a step's marker), failing after 30 seconds.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many lines of `text` are exactly `line`.
fn count_lines(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}

/// A spawned `gantry run` whose stdout goes to a file (so a huge output cannot block it).
struct Background {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    _files: tempfile::TempDir,
}

impl Background {
    fn spawn(repo: &TestRepo, args: &[&str]) -> Background {
        Background::start(gantry_command(repo.path(), args))
    }

    /// Starts `command` (a gantry command line) in the background.
    fn start(mut command: std::process::Command) -> Background {
        let files = tempfile::tempdir().expect("tempdir");
        let stdout = files.path().join("stdout");
        let stderr = files.path().join("stderr");
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn gantry");
        Background {
            child,
            stdout,
            stderr,
            _files: files,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the end (at most 60 seconds), returning the exit code.
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "gantry did not end\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout).unwrap_or_default()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends SIGINT to a process, as Ctrl-C in a terminal does.
fn interrupt(pid: u32) {
    send_signal("INT", pid);
}

/// `kill -<signal> <pid>`.
fn send_signal(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}
