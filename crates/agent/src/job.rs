//! One assignment from start to end: an empty job slot under the work dir, the job run by the
//! runner with the agent's sink, its log and events streamed, its result reported, and the
//! slot emptied.
//!
//! A slot (`slot_<n>`: `workspace/`, `temp/`, `log`) is a directory reused by the jobs an
//! agent runs one after the other, as GitHub's runner reuses its `_work` directory: between
//! two jobs everything a job left in it is removed, except the files the runner recycles
//! ([`StepFiles::kept`]: empty step files, and the event file, which it overwrites). Creating and
//! removing the same dozen directories and files for every job costs more than the job itself
//! on filesystems that scan recently deleted inodes on each creation (ext4 without a journal).
//! A slot that cannot be emptied is given up: removed, and the next job starts in a new one.

use crate::client::Client;
use crate::config::AgentConfig;
use crate::control::JobControl;
use crate::heartbeat::keep_alive;
use crate::shutdown::Shutdown;
use crate::sink::{EventQueue, JobSink};
use crate::spool::LogSpool;
use crate::uploader::{Report, UploadSettings, Uploader};
use gantry_protocol::agent::JobAssignment;
use gantry_protocol::{Annotation, AnnotationLevel, Conclusion, Event, EventKind, FailureReason};
use gantry_runner::checkout::RepoSource;
use gantry_runner::job::now_ms;
use gantry_runner::mask::Masker;
use gantry_runner::{EventSink, JobOutcome, JobRequest, RunnerOptions, StepFiles, run_job};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What an agent shares with each of its jobs.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub client: Client,
    pub config: Arc<AgentConfig>,
    pub shutdown: Shutdown,
    pub slots: Arc<Slots>,
}

/// The agent's job slots that no job is using.
#[derive(Debug, Default)]
pub struct Slots {
    free: Mutex<Vec<Slot>>,
    next_index: AtomicUsize,
}

/// One job slot: its number, the runner's recycled files in it, and whether it is known to be
/// empty (emptied at the end of the previous job).
#[derive(Debug)]
struct Slot {
    index: usize,
    step_files: StepFiles,
    emptied: bool,
}

impl Slots {
    fn take(&self) -> Slot {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        free.unwrap_or_else(|| Slot {
            index: self.next_index.fetch_add(1, Ordering::Relaxed),
            step_files: StepFiles::default(),
            emptied: false,
        })
    }

    fn give_back(&self, slot: Slot) {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot);
    }
}

/// The directories of one job.
struct JobDirs {
    root: PathBuf,
    workspace: PathBuf,
    temp: PathBuf,
}

/// Runs one assignment and reports it. Never panics on what the server sent; every failure
/// ends in a finish request (unless the lease is gone).
pub async fn run_assignment(ctx: JobContext, assignment: JobAssignment) -> Report {
    let job_id = assignment.job_id.clone();
    let lease_id = assignment.lease_id.clone();
    let mut slot = ctx.slots.take();
    let root = ctx.config.work_dir.join(format!("slot_{}", slot.index));
    let dirs = JobDirs {
        workspace: root.join("workspace"),
        temp: root.join("temp"),
        root,
    };
    let (spool, setup_error) = match prepare_dirs(&dirs, &mut slot).await {
        Ok(spool) => (spool, None),
        Err(error) => {
            let path = dirs.root.join("log");
            (
                LogSpool::unavailable(&path, &error),
                Some(format!(
                    "could not prepare the job's directory {}: {error}",
                    dirs.root.display()
                )),
            )
        }
    };
    let spool = Arc::new(spool);
    let events = Arc::new(EventQueue::default());
    let wake = Arc::new(Notify::new());
    let sink = Arc::new(JobSink::new(spool.clone(), events.clone(), wake.clone()));
    let control = Arc::new(JobControl::new(ctx.config.cancel_grace, sink.clone()));
    let mut uploader = Uploader::new(
        ctx.client.clone(),
        job_id.clone(),
        lease_id.clone(),
        spool.clone(),
        events,
        wake,
        control.clone(),
        UploadSettings {
            retry: ctx.config.retry,
            chunk_size: ctx.config.log_chunk_size,
            events_batch: ctx.config.events_batch,
            linger: ctx.config.log_linger,
        },
    );

    let interval = match assignment.heartbeat_interval_ms {
        0 => ctx.config.heartbeat_interval,
        ms => Duration::from_millis(ms),
    };
    let reported = CancellationToken::new();
    let heartbeat = tokio::spawn(keep_alive(
        ctx.client.clone(),
        job_id.clone(),
        lease_id.clone(),
        interval,
        control.clone(),
        ctx.shutdown.clone(),
        reported.clone(),
    ));

    tracing::info!(job = %job_id, name = %assignment.spec.name, "job started");
    let run = async {
        let outcome = match setup_error {
            Some(message) => setup_failure(&sink, &assignment, message),
            None => execute(&ctx, &assignment, &dirs, &slot.step_files, &sink, &control).await,
        };
        // Log text the disk refused at the end of the job is never followed by a write that
        // could say so in the log: the job's events (kept in memory) say it.
        if let Some((bytes, error)) = spool.lost() {
            annotate(
                &sink,
                &assignment,
                AnnotationLevel::Warning,
                format!("{bytes} byte(s) at the end of this job's log were lost: {error}"),
            );
        }
        control.end();
        outcome
    };
    let watch_shutdown = async {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => control.stop_for_shutdown(),
            _ = control.ended() => {}
        }
    };
    // On a forced stop, an unreachable server gets a bounded time after the job ended before
    // the agent leaves; otherwise the log and the result are retried until acknowledged.
    let abandon = CancellationToken::new();
    let deadline = tokio::spawn({
        let shutdown = ctx.shutdown.clone();
        let control = control.clone();
        let abandon = abandon.clone();
        let reported = reported.clone();
        let timeout = ctx.config.stop_report_timeout;
        async move {
            let expire = async {
                shutdown.cancelled().await;
                control.ended().await;
                tokio::time::sleep(timeout).await;
            };
            tokio::select! {
                _ = expire => abandon.cancel(),
                _ = reported.cancelled() => {}
            }
        }
    });
    let stream = async {
        tokio::select! {
            _ = uploader.stream() => {}
            _ = abandon.cancelled() => {}
        }
    };
    let (outcome, (), ()) = tokio::join!(run, stream, watch_shutdown);

    let abandoned =
        || Report::Refused("the agent stopped before the server acknowledged the job".to_owned());
    let report = if control.is_gone() {
        Report::Gone
    } else if abandon.is_cancelled() {
        abandoned()
    } else {
        tokio::select! {
            report = uploader.finish(&outcome) => report,
            _ = abandon.cancelled() => abandoned(),
        }
    };
    reported.cancel();
    let _ = heartbeat.await;
    let _ = deadline.await;
    match &report {
        Report::Finished => tracing::info!(
            job = %job_id,
            conclusion = %outcome.conclusion,
            log_bytes = uploader.acknowledged(),
            "job reported"
        ),
        Report::Gone => tracing::warn!(job = %job_id, "job dropped: its lease is gone"),
        Report::Refused(why) => tracing::error!(job = %job_id, "job not reported: {why}"),
    }
    drop(spool);
    drop(sink);
    let keep = slot.step_files.kept();
    let root = dirs.root.clone();
    let emptied = tokio::task::spawn_blocking(move || {
        empty_slot(&dirs, &keep).map_err(|error| {
            tracing::warn!(path = %dirs.root.display(), "could not empty the job's directory: {error}");
        })
    })
    .await;
    slot.emptied = matches!(emptied, Ok(Ok(())));
    if !slot.emptied {
        // Given up: the next job in this slot starts from a new directory; a directory that
        // cannot even be removed takes its slot out of use, and later jobs get new ones.
        slot.step_files.forget();
        match tokio::fs::remove_dir_all(&root).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %root.display(), "could not remove the job's directory, not using it again: {error}");
                return report;
            }
        }
    }
    ctx.slots.give_back(slot);
    report
}

/// The slot's directories and its log spool: a slot emptied at the end of its previous job is
/// used as it is; any other is removed and created anew.
async fn prepare_dirs(dirs: &JobDirs, slot: &mut Slot) -> std::io::Result<LogSpool> {
    if !std::mem::take(&mut slot.emptied) {
        slot.step_files.forget();
        match tokio::fs::remove_dir_all(&dirs.root).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    tokio::fs::create_dir_all(&dirs.workspace).await?;
    tokio::fs::create_dir_all(&dirs.temp).await?;
    LogSpool::create(&dirs.root.join("log"))
}

/// Removes everything a job left in its slot but the files in `keep`; the log spool is
/// emptied.
fn empty_slot(dirs: &JobDirs, keep: &[PathBuf]) -> std::io::Result<()> {
    empty_dir(&dirs.workspace, &[])?;
    empty_dir(&dirs.temp, keep)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(dirs.root.join("log"))?
        .set_len(0)
}

/// Removes what `dir` holds, except the regular files in `keep` and the directories on their
/// way. Links are removed, never followed.
fn empty_dir(dir: &Path, keep: &[PathBuf]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && keep.iter().any(|k| k.starts_with(&path)) {
            empty_dir(&path, keep)?;
        } else if kind.is_file() && keep.contains(&path) {
            // Recycled by the runner.
        } else if kind.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Runs the job in its (empty) workspace.
async fn execute(
    ctx: &JobContext,
    assignment: &JobAssignment,
    dirs: &JobDirs,
    step_files: &StepFiles,
    sink: &Arc<JobSink>,
    control: &Arc<JobControl>,
) -> JobOutcome {
    let cancel = control.runner_cancel();
    let mut masker = Masker::new();
    for value in assignment.secrets.values() {
        masker.add_secret(value);
    }
    masker.add_proxy_password(&assignment.source.url);
    let source = RepoSource {
        url: assignment.source.url.clone(),
        sha: assignment.source.sha.clone(),
        git_ref: assignment.source.git_ref.clone(),
    };
    // As on GitHub, the workspace starts empty: the job's `actions/checkout` step (built into
    // the runner, with this source) brings the code when the job asks for it.
    let request = JobRequest {
        spec: assignment.spec.clone(),
        secrets: assignment.secrets.clone(),
        workspace: dirs.workspace.clone(),
        temp_dir: dirs.temp.clone(),
        tool_cache: ctx.config.work_dir.join("_tool"),
        source: Some(source),
        workspace_is_working_tree: false,
        base_env: host_env(),
        tracking_id: format!(
            "agent-{}-{}-{}",
            std::process::id(),
            dir_name(&assignment.job_id),
            dir_name(&assignment.lease_id)
        ),
        step_files: step_files.clone(),
        options: RunnerOptions {
            stop: ctx.config.stop,
            skip_unavailable_actions: false,
            step_debug: step_debug(assignment),
            runner_name: ctx.config.name.clone(),
        },
    };
    let runner_sink: Arc<dyn EventSink> = sink.clone();
    run_job(request, runner_sink, cancel).await
}

/// A job-level annotation from the agent itself.
fn annotate(sink: &JobSink, assignment: &JobAssignment, level: AnnotationLevel, message: String) {
    sink.emit(Event {
        job: assignment.spec.key.clone(),
        at_ms: now_ms(),
        kind: EventKind::Annotation {
            step: None,
            annotation: Annotation {
                level,
                message,
                title: None,
                file: None,
                line: None,
                end_line: None,
                column: None,
                end_column: None,
            },
        },
    });
}

/// Reports a job that could not start, as the runner reports its own setup failures.
fn setup_failure(sink: &JobSink, assignment: &JobAssignment, message: String) -> JobOutcome {
    sink.log(&format!("##[error]{message}\n"));
    annotate(sink, assignment, AnnotationLevel::Error, message.clone());
    JobOutcome {
        conclusion: Conclusion::Failure,
        reason: Some(FailureReason::SetupFailed(message)),
        outputs: IndexMap::new(),
    }
}

/// `ACTIONS_STEP_DEBUG` set to `true` as a secret or a variable, as GitHub reads it.
fn step_debug(assignment: &JobAssignment) -> bool {
    let is_true = |v: &str| v.trim().eq_ignore_ascii_case("true");
    assignment
        .secrets
        .get("ACTIONS_STEP_DEBUG")
        .is_some_and(|v| is_true(v))
        || assignment
            .spec
            .vars
            .get("ACTIONS_STEP_DEBUG")
            .and_then(|v| v.as_str())
            .is_some_and(is_true)
}

/// The environment step processes start from: the agent's own, without what would make a job
/// believe it runs inside another CI's job, and without the agent's settings (its registration
/// token among them).
pub fn host_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            !(k.starts_with("GITHUB_")
                || k.starts_with("RUNNER_")
                || k.starts_with("ACTIONS_")
                || k.starts_with("INPUT_")
                || k.starts_with("GANTRY_"))
        })
        .collect()
}

/// A file name made of an id the server sent: letters, digits, `-` and `_` kept, anything
/// else replaced, so an id can never name a path outside the work dir.
fn dir_name(id: &str) -> String {
    let name: String = id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "job".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_safe_directory_names() {
        assert_eq!(dir_name("job_0123abcd"), "job_0123abcd");
        assert_eq!(dir_name("../../etc"), "______etc");
        assert_eq!(dir_name(""), "job");
        assert_eq!(dir_name(&"x".repeat(300)).len(), 100);
    }
}
