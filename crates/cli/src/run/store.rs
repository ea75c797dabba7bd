//! `.gantry/runs/<n>/` of a repository: each local run's event stream, one log file per job and
//! the final summary, so `gantry run --last` can show it again and a failure can be read later.
//!
//! Layout:
//! - `events.jsonl`: every runner event, one JSON object per line;
//! - `logs/<job key>.log`: the job's output as printed, with a header line per step;
//! - `summary.json`: the results (written when the run ends).

use anyhow::Context as _;
use gantry_protocol::{Conclusion, Event, EventKind, FailureReason};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The results of one local run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub number: u32,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub workflows: Vec<String>,
    pub started_ms: i64,
    pub duration_ms: u64,
    pub interrupted: bool,
    /// The run's result, which its exit code tells (`None` in summaries of older versions).
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    pub jobs: Vec<JobSummary>,
    /// `GITHUB_STEP_SUMMARY` contents, in the order steps wrote them.
    pub step_summaries: Vec<StepSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub key: String,
    pub name: String,
    pub workflow: String,
    /// Matrix values as `k=v, k=v`, empty without a matrix.
    pub matrix: String,
    pub conclusion: Conclusion,
    /// `continue-on-error: true`: a failure of this job does not fail the run.
    #[serde(default)]
    pub continue_on_error: bool,
    pub reason: Option<FailureReason>,
    /// Why the job was skipped, when it was.
    pub skipped_reason: Option<String>,
    pub duration_ms: u64,
    /// The first failing step and the last lines it printed.
    pub failed_step: Option<FailedStep>,
}

impl RunSummary {
    /// Jobs whose failure fails the run.
    pub fn failed_jobs(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.conclusion == Conclusion::Failure && !j.continue_on_error)
            .count()
    }

    /// Whether the run succeeded, as its exit code (0) said.
    pub fn succeeded(&self) -> bool {
        match self.conclusion {
            Some(conclusion) => conclusion == Conclusion::Success && !self.interrupted,
            None => {
                !self.interrupted
                    && self.failed_jobs() == 0
                    && !self
                        .jobs
                        .iter()
                        .any(|j| j.conclusion == Conclusion::Cancelled)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedStep {
    pub name: String,
    pub tail: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    pub job: String,
    pub markdown: String,
}

/// Writes one run's files. Write errors are kept, not raised: a full disk must not change a
/// job's result, so the run goes on and the problem is reported at the end.
pub struct RunStore {
    dir: PathBuf,
    events: Option<BufWriter<File>>,
    logs: HashMap<String, JobLog>,
    step_names: HashMap<(String, usize), String>,
    first_error: Option<String>,
}

impl RunStore {
    /// Creates `.gantry/runs/<n>/` with the next free number.
    pub fn create(repo_root: &Path) -> anyhow::Result<(u32, RunStore)> {
        let runs = runs_dir(repo_root);
        fs::create_dir_all(&runs)
            .with_context(|| format!("could not create {}", runs.display()))?;
        let mut number = last_number(&runs).unwrap_or(0) + 1;
        let dir = loop {
            let dir = runs.join(number.to_string());
            match fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("could not create {}", dir.display()));
                }
            }
        };
        fs::create_dir_all(dir.join("logs"))
            .with_context(|| format!("could not create {}/logs", dir.display()))?;
        let events = File::create(dir.join("events.jsonl"))
            .with_context(|| format!("could not create {}/events.jsonl", dir.display()))?;
        Ok((
            number,
            RunStore {
                dir,
                events: Some(BufWriter::new(events)),
                logs: HashMap::new(),
                step_names: HashMap::new(),
                first_error: None,
            },
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records one event.
    pub fn record(&mut self, event: &Event) {
        let result = self.try_record(event);
        self.keep_error(result);
    }

    fn try_record(&mut self, event: &Event) -> io::Result<()> {
        if let Some(events) = self.events.as_mut() {
            match &event.kind {
                // The text is in the job's log file; the event stream records where it went.
                EventKind::Log { step, text } => {
                    let reference = serde_json::json!({
                        "job": event.job,
                        "at_ms": event.at_ms,
                        "event": "log",
                        "step": step,
                        "bytes": text.len(),
                    });
                    serde_json::to_writer(&mut *events, &reference)?;
                }
                _ => serde_json::to_writer(&mut *events, event)?,
            }
            events.write_all(b"\n")?;
        }
        let line = match &event.kind {
            EventKind::JobStarted { name } => Some(format!("=== {name}\n")),
            EventKind::StepStarted { step, name } => {
                self.step_names
                    .insert((event.job.clone(), *step), name.clone());
                Some(format!("--- {name}\n"))
            }
            EventKind::Log { text, .. } => Some(text.clone()),
            EventKind::GroupStarted { title, .. } => Some(format!("::group::{title}\n")),
            EventKind::GroupEnded { .. } => Some("::endgroup::\n".to_owned()),
            EventKind::Annotation { annotation, .. } => Some(format!(
                "{}: {}\n",
                match annotation.level {
                    gantry_protocol::AnnotationLevel::Error => "error",
                    gantry_protocol::AnnotationLevel::Warning => "warning",
                    gantry_protocol::AnnotationLevel::Notice => "notice",
                },
                annotation.message
            )),
            EventKind::StepFinished {
                step, conclusion, ..
            } => {
                let name = self
                    .step_names
                    .get(&(event.job.clone(), *step))
                    .cloned()
                    .unwrap_or_default();
                Some(format!("--- {name}: {conclusion}\n"))
            }
            EventKind::JobFinished { conclusion, .. } => Some(format!("=== {conclusion}\n")),
            EventKind::JobSkipped { .. }
            | EventKind::Debug { .. }
            | EventKind::StepSummary { .. } => None,
        };
        if let Some(line) = line {
            let log = match self.logs.get_mut(&event.job) {
                Some(log) => log,
                None => {
                    let path = self.dir.join("logs").join(log_file_name(&event.job));
                    let file = BufWriter::new(File::create(path)?);
                    self.logs.entry(event.job.clone()).or_insert(JobLog {
                        file,
                        written: 0,
                        truncated: false,
                    })
                }
            };
            log.write(&line)?;
        }
        Ok(())
    }

    /// Writes the summary and flushes everything. Returns the first write error of the run, if
    /// any, for the caller to report.
    pub fn finish(&mut self, summary: &RunSummary) -> Option<String> {
        let mut flush = || -> io::Result<()> {
            if let Some(events) = self.events.as_mut() {
                events.flush()?;
            }
            for log in self.logs.values_mut() {
                log.file.flush()?;
            }
            let text = serde_json::to_vec_pretty(summary).map_err(io::Error::other)?;
            write_atomically(&self.dir.join("summary.json"), &text)
        };
        let result = flush();
        self.keep_error(result);
        self.first_error.clone()
    }

    fn keep_error(&mut self, result: io::Result<()>) {
        if let Err(e) = result
            && self.first_error.is_none()
        {
            self.first_error = Some(format!("{}: {e}", self.dir.display()));
        }
    }
}

/// Bytes of one job's log kept in `.gantry/runs` (as on the server).
pub const LOG_LIMIT: u64 = 64 * 1024 * 1024;

/// The line that ends a log cut at [`LOG_LIMIT`].
pub const TRUNCATION_MARKER: &str = "\n[gantry] log truncated: output beyond 64 MiB was not kept (the job's result is unaffected)\n";

/// One job's log file, cut at [`LOG_LIMIT`] with a marker.
struct JobLog {
    file: BufWriter<File>,
    written: u64,
    truncated: bool,
}

impl JobLog {
    fn write(&mut self, text: &str) -> io::Result<()> {
        if self.truncated {
            return Ok(());
        }
        let room = LOG_LIMIT.saturating_sub(self.written);
        let len = text.len() as u64;
        if len <= room {
            self.file.write_all(text.as_bytes())?;
            self.written += len;
            return Ok(());
        }
        // Cut at a character boundary so the file stays valid UTF-8.
        let mut cut = usize::try_from(room).unwrap_or(0).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.file.write_all(&text.as_bytes()[..cut])?;
        self.file.write_all(TRUNCATION_MARKER.as_bytes())?;
        self.written = LOG_LIMIT;
        self.truncated = true;
        Ok(())
    }
}

/// The folder of all local runs of a repository.
pub fn runs_dir(repo_root: &Path) -> PathBuf {
    repo_root.join(".gantry").join("runs")
}

/// The summary of the newest run that has one.
pub fn load_last(repo_root: &Path) -> anyhow::Result<RunSummary> {
    let runs = runs_dir(repo_root);
    let mut numbers = run_numbers(&runs);
    numbers.sort_unstable();
    for number in numbers.into_iter().rev() {
        let path = runs.join(number.to_string()).join("summary.json");
        if let Ok(text) = fs::read(&path) {
            return serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a run summary", path.display()));
        }
    }
    anyhow::bail!(
        "no finished run in {}: start one with `gantry run`",
        runs.display()
    )
}

fn last_number(runs: &Path) -> Option<u32> {
    run_numbers(runs).into_iter().max()
}

fn run_numbers(runs: &Path) -> Vec<u32> {
    fs::read_dir(runs)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// A job key as a file name: path separators and odd characters become `_`.
pub fn log_file_name(job_key: &str) -> String {
    let mut name: String = job_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with('.') {
        name.insert(0, '_');
    }
    name.push_str(".log");
    name
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(job: &str, kind: EventKind) -> Event {
        Event {
            job: job.into(),
            at_ms: 0,
            kind,
        }
    }

    #[test]
    fn runs_are_numbered_and_the_last_summary_is_found() {
        let repo = tempfile::tempdir().expect("tempdir");
        let (first, mut store) = RunStore::create(repo.path()).expect("create");
        assert_eq!(first, 1);
        store.record(&event(
            "build",
            EventKind::JobStarted {
                name: "build".into(),
            },
        ));
        store.record(&event(
            "build",
            EventKind::Log {
                step: Some(0),
                text: "hello\n".into(),
            },
        ));
        let summary = RunSummary {
            number: 1,
            event: "push".into(),
            ..RunSummary::default()
        };
        assert_eq!(store.finish(&summary), None);
        let (second, _) = RunStore::create(repo.path()).expect("create");
        assert_eq!(second, 2);
        // Run 2 has no summary yet: the last finished one is run 1.
        assert_eq!(load_last(repo.path()).expect("last").number, 1);
        let log = fs::read_to_string(runs_dir(repo.path()).join("1/logs/build.log")).expect("log");
        assert_eq!(log, "=== build\nhello\n");
        let events =
            fs::read_to_string(runs_dir(repo.path()).join("1/events.jsonl")).expect("events");
        assert_eq!(events.lines().count(), 2);
    }

    #[test]
    fn a_log_past_the_limit_is_cut_with_a_marker_and_events_keep_no_text() {
        let repo = tempfile::tempdir().expect("tempdir");
        let (_, mut store) = RunStore::create(repo.path()).expect("create");
        let line = format!("{}\n", "é".repeat(4095));
        let chunks = usize::try_from(LOG_LIMIT).expect("fits") / line.len() + 2;
        for _ in 0..chunks {
            store.record(&event(
                "big",
                EventKind::Log {
                    step: Some(0),
                    text: line.clone(),
                },
            ));
        }
        assert_eq!(store.finish(&RunSummary::default()), None);
        let dir = runs_dir(repo.path()).join("1");
        let log = fs::read(dir.join("logs/big.log")).expect("log");
        let text = String::from_utf8(log).expect("still UTF-8");
        assert!(text.ends_with(TRUNCATION_MARKER));
        assert!(text.len() as u64 <= LOG_LIMIT + TRUNCATION_MARKER.len() as u64);
        let events = fs::read_to_string(dir.join("events.jsonl")).expect("events");
        assert!(
            events.len() < 200 * chunks,
            "log text is not repeated in events.jsonl"
        );
    }

    #[test]
    fn job_keys_become_safe_file_names() {
        assert_eq!(log_file_name("test.2"), "test.2.log");
        assert_eq!(log_file_name("call/build"), "call_build.log");
        assert_eq!(log_file_name("../x"), "_.._x.log");
    }

    #[test]
    fn no_runs_is_a_clear_error() {
        let repo = tempfile::tempdir().expect("tempdir");
        let err = load_last(repo.path()).expect_err("nothing yet");
        assert!(err.to_string().contains("start one with `gantry run`"));
    }
}
