//! Drives the run graphs of a local run: starts legs on the runner (host backend) up to the
//! parallelism limit, feeds their results back, cancels on fail-fast and Ctrl-C, and routes every
//! event to the printer, the run store and the summary.

use super::printer::Printer;
use super::store::{RunStore, RunSummary};
use super::summary::SummaryBuilder;
use crate::repo::Repo;
use gantry_protocol::{Conclusion, Event, EventKind, FailureReason, JobSpec};
use gantry_runner::checkout::{CheckoutOptions, RepoSource, checkout, file_url};
use gantry_runner::process::StopPolicy;
use gantry_runner::{Cancel, EventSink, JobOutcome, JobRequest, RunnerOptions, run_job};
use gantry_workflow::model::Workflow;
use gantry_workflow::plan::{Action, LegStart, RunGraph, WorkflowPlan};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How to run.
pub struct DriverOptions {
    pub repo: Repo,
    pub sha: String,
    pub git_ref: Option<String>,
    pub secrets: IndexMap<String, String>,
    /// `--env`/`--env-file`: env for every job, under the workflow's own.
    pub extra_env: IndexMap<String, String>,
    pub parallel: usize,
    pub filter: JobFilter,
    pub workspace_here: bool,
    pub keep_workspace: bool,
    pub skip_unavailable_actions: bool,
    pub step_debug: bool,
    pub interrupt_grace: Duration,
    pub terminate_grace: Duration,
    pub run_number: u32,
    pub event: String,
}

/// `--job` and `--matrix`.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub jobs: Vec<String>,
    pub matrix: Vec<(String, String)>,
}

impl JobFilter {
    /// Whether a leg's matrix passes `--matrix`: for each filtered key the leg has, its value is
    /// one of the values given for that key.
    fn matrix_matches(&self, matrix: &serde_json::Value) -> bool {
        let mut allowed: HashMap<&str, Vec<&str>> = HashMap::new();
        for (k, v) in &self.matrix {
            allowed.entry(k.as_str()).or_default().push(v.as_str());
        }
        allowed.iter().all(|(key, values)| match matrix.get(*key) {
            Some(value) => {
                let text = crate::commands::run::json_text(value);
                values.iter().any(|v| *v == text)
            }
            None => true,
        })
    }
}

/// The end of a run.
pub struct DriveOutcome {
    pub conclusion: Conclusion,
    pub interrupted: bool,
}

/// Routes runner events to the printer, the store and the summary.
struct CliSink {
    state: Mutex<SinkState>,
}

struct SinkState {
    printer: Printer,
    store: RunStore,
    summary: SummaryBuilder,
}

impl EventSink for CliSink {
    fn emit(&self, event: Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.store.record(&event);
        state.summary.on_event(&event);
        state.printer.on_event(&event);
    }
}

impl CliSink {
    fn with<R>(&self, f: impl FnOnce(&mut SinkState) -> R) -> R {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

/// A leg that finished.
struct LegDone {
    graph: usize,
    key: String,
    leg: usize,
    outcome: JobOutcome,
}

pub async fn drive(
    plans: Vec<WorkflowPlan>,
    workflows: Vec<Workflow>,
    options: DriverOptions,
    printer: Printer,
    store: RunStore,
) -> anyhow::Result<DriveOutcome> {
    let started = Instant::now();
    let started_ms = gantry_runner::job::now_ms();
    // Listen before any step starts, and for the whole run: a Ctrl-C that arrives between two
    // rounds of the loop below is kept for the next, never lost (nor fatal, which would leave
    // the steps, in process groups of their own, running).
    let mut stop_signals = StopSignals::new()?;
    let sink = Arc::new(CliSink {
        state: Mutex::new(SinkState {
            printer,
            store,
            summary: SummaryBuilder::default(),
        }),
    });
    let options = Arc::new(options);

    let mut graphs = Vec::new();
    let mut selections = Vec::new();
    for plan in &plans {
        graphs.push(RunGraph::new(plan, &workflows)?);
        selections.push(selected_keys(plan, &options.filter.jobs));
    }
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<LegDone>();
    let mut pending: VecDeque<(usize, LegStart)> = VecDeque::new();
    let mut running: HashMap<(usize, String, usize), Cancel> = HashMap::new();
    let mut interrupts = 0u32;
    let workdir_root = std::env::temp_dir().join(format!(
        "gantry-run-{}-{}",
        options.run_number,
        std::process::id()
    ));

    loop {
        // Let every graph say what to do until none has anything new.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (index, graph) in graphs.iter_mut().enumerate() {
                for action in graph.next_actions() {
                    progressed = true;
                    match action {
                        Action::StartLeg(start) => {
                            let selected = selections[index]
                                .as_ref()
                                .is_none_or(|keys| keys.contains(start.key.as_str()));
                            if !selected || !options.filter.matrix_matches(&start.spec.matrix) {
                                graph.finish(
                                    &start.key,
                                    start.leg,
                                    Conclusion::Skipped,
                                    IndexMap::new(),
                                );
                                continue;
                            }
                            if let Some(reason) = foreign_platform(&start.spec.runs_on) {
                                emit(
                                    &sink,
                                    &start.spec.key,
                                    EventKind::JobSkipped {
                                        name: start.spec.name.clone(),
                                        reason,
                                    },
                                );
                                graph.finish(
                                    &start.key,
                                    start.leg,
                                    Conclusion::Skipped,
                                    IndexMap::new(),
                                );
                                continue;
                            }
                            sink.with(|s| {
                                s.summary.register_job(
                                    &start.spec.key,
                                    &start.spec.name,
                                    &start.spec.workflow.name,
                                    &matrix_text(&start.spec.matrix),
                                    start.spec.continue_on_error,
                                );
                                s.printer.register_job(&start.spec.key, &start.spec.name);
                            });
                            pending.push_back((index, *start));
                        }
                        Action::CancelLeg { key, leg, .. } => {
                            if let Some(cancel) =
                                running.get(&(index, key.as_str().to_owned(), leg))
                            {
                                cancel.cancel.cancel();
                            } else if let Some(pos) = pending
                                .iter()
                                .position(|(g, s)| *g == index && s.key == key && s.leg == leg)
                                && let Some((_, start)) = pending.remove(pos)
                            {
                                emit(
                                    &sink,
                                    &start.spec.key,
                                    EventKind::JobSkipped {
                                        name: start.spec.name.clone(),
                                        reason: "cancelled before it started".to_owned(),
                                    },
                                );
                                sink.with(|s| {
                                    s.summary
                                        .set_conclusion(&start.spec.key, Conclusion::Cancelled);
                                });
                                graph.finish(&key, leg, Conclusion::Cancelled, IndexMap::new());
                            }
                        }
                        Action::JobSkipped { key, name, reason } => {
                            let selected = selections[index]
                                .as_ref()
                                .is_none_or(|keys| keys.contains(key.as_str()));
                            if selected {
                                emit(&sink, key.as_str(), EventKind::JobSkipped { name, reason });
                                // A job that never started because the run was cancelled is
                                // `cancelled`, as its dependents see it.
                                if let Some(conclusion) = graph.result(&key) {
                                    sink.with(|s| {
                                        s.summary.set_conclusion(key.as_str(), conclusion)
                                    });
                                }
                            }
                        }
                        Action::JobFailed { key, name, reason } => {
                            emit(
                                &sink,
                                key.as_str(),
                                EventKind::JobStarted { name: name.clone() },
                            );
                            emit(
                                &sink,
                                key.as_str(),
                                EventKind::Annotation {
                                    step: None,
                                    annotation: gantry_protocol::Annotation {
                                        level: gantry_protocol::AnnotationLevel::Error,
                                        message: reason.clone(),
                                        title: None,
                                        file: None,
                                        line: None,
                                        end_line: None,
                                        column: None,
                                        end_column: None,
                                    },
                                },
                            );
                            emit(
                                &sink,
                                key.as_str(),
                                EventKind::JobFinished {
                                    conclusion: Conclusion::Failure,
                                    reason: Some(FailureReason::SetupFailed(reason)),
                                    outputs: IndexMap::new(),
                                    duration_ms: 0,
                                },
                            );
                        }
                        Action::JobFinished { .. } => {}
                    }
                }
            }
        }

        // After a second interruption nothing more starts, not even `if: always()` jobs.
        if interrupts > 1 && !pending.is_empty() {
            for (index, start) in pending.drain(..) {
                emit(
                    &sink,
                    &start.spec.key,
                    EventKind::JobSkipped {
                        name: start.spec.name.clone(),
                        reason: "the run was stopped before it started".to_owned(),
                    },
                );
                sink.with(|s| {
                    s.summary
                        .set_conclusion(&start.spec.key, Conclusion::Cancelled)
                });
                if let Some(graph) = graphs.get_mut(index) {
                    graph.finish(
                        &start.key,
                        start.leg,
                        Conclusion::Cancelled,
                        IndexMap::new(),
                    );
                }
            }
            // The graphs have news (dependents to skip): hear them first.
            continue;
        }

        // Start what fits. Legs that start after a first interruption are the ones that run
        // when a run is cancelled (`if: always()`, `if: cancelled()`): they run as usual.
        while running.len() < options.parallel {
            let Some((index, start)) = pending.pop_front() else {
                break;
            };
            let cancel = Cancel::default();
            running.insert(
                (index, start.key.as_str().to_owned(), start.leg),
                cancel.clone(),
            );
            let secrets = match start.secrets.resolve(&options.secrets) {
                Ok(secrets) => secrets,
                Err(message) => {
                    warn_job(&sink, &start.spec.key, &message);
                    IndexMap::new()
                }
            };
            let task = LegTask {
                graph: index,
                key: start.key.as_str().to_owned(),
                leg: start.leg,
                spec: start.spec,
                secrets,
                options: options.clone(),
                sink: sink.clone(),
                cancel,
                root: workdir_root.clone(),
            };
            let tx = done_tx.clone();
            tokio::spawn(async move {
                let done = task.run().await;
                let _ = tx.send(done);
            });
        }

        if running.is_empty() && pending.is_empty() && graphs.iter().all(RunGraph::is_finished) {
            break;
        }
        if running.is_empty() && pending.is_empty() {
            // Nothing runs and nothing can start: the graphs are stuck (a bug, never silent).
            anyhow::bail!("the run cannot make progress: no job is running or ready");
        }

        tokio::select! {
            done = done_rx.recv() => {
                let Some(done) = done else { break };
                running.remove(&(done.graph, done.key.clone(), done.leg));
                if let Some(graph) = graphs.get_mut(done.graph) {
                    graph.finish(
                        &gantry_workflow::plan::JobKey::new(done.key.clone()),
                        done.leg,
                        done.outcome.conclusion,
                        done.outcome.outputs,
                    );
                }
            }
            signal = stop_signals.recv() => {
                interrupts += 1;
                if interrupts == 1 {
                    let message = match signal {
                        StopSignal::Interrupt => {
                            "Cancelling the run (press Ctrl-C again to stop at once)…".to_owned()
                        }
                        StopSignal::Terminate => "SIGTERM: cancelling the run…".to_owned(),
                        StopSignal::Hangup => {
                            "SIGHUP (the terminal closed): cancelling the run…".to_owned()
                        }
                    };
                    sink.with(|s| s.printer.warn(&message));
                    for graph in &mut graphs {
                        graph.cancel_run();
                    }
                    for cancel in running.values() {
                        cancel.cancel.cancel();
                    }
                } else {
                    sink.with(|s| s.printer.warn("Stopping now."));
                    for cancel in running.values() {
                        cancel.cancel.cancel();
                        cancel.force.cancel();
                    }
                }
            }
        }
    }

    if !options.keep_workspace {
        let _ = std::fs::remove_dir_all(&workdir_root);
    } else if workdir_root.exists() {
        sink.with(|s| {
            s.printer.report(&format!(
                "Workspaces kept in {} (one folder per job)",
                workdir_root.display()
            ));
        });
    }
    let conclusion = overall(&graphs);
    let interrupted = interrupts > 0;
    sink.with(|s| {
        let summary = RunSummary {
            number: options.run_number,
            event: options.event.clone(),
            git_ref: options.git_ref.clone().unwrap_or_default(),
            sha: options.sha.clone(),
            workflows: plans.iter().map(|p| p.file.clone()).collect(),
            started_ms,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            interrupted,
            conclusion: Some(if interrupted {
                Conclusion::Cancelled
            } else {
                conclusion
            }),
            jobs: s.summary.jobs(),
            step_summaries: s.summary.step_summaries(),
        };
        if let Some(error) = s.store.finish(&summary) {
            s.printer
                .warn(&format!("the run's logs could not all be stored: {error}"));
        }
        s.printer.print_summary(&summary);
        s.printer.flush();
    });
    Ok(DriveOutcome {
        conclusion,
        interrupted,
    })
}

/// A signal that stops a run: Ctrl-C, and `kill` or a closed terminal, which would otherwise
/// end gantry and leave the steps (in process groups of their own) running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    /// `None` when gantry was started with the signal ignored (`nohup` ignores SIGHUP): it
    /// stays ignored.
    terminate: Option<tokio::signal::unix::Signal>,
    hangup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn new() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| anyhow::anyhow!("could not listen for {kind:?}: {e}"))
        };
        let unless_ignored = |kind: SignalKind| -> anyhow::Result<_> {
            if is_ignored(kind.as_raw_value()) {
                Ok(None)
            } else {
                listen(kind).map(Some)
            }
        };
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: unless_ignored(SignalKind::terminate())?,
            hangup: unless_ignored(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> StopSignal {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
            match signal {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            Some(()) = self.interrupt.recv() => StopSignal::Interrupt,
            Some(()) = next(&mut self.terminate) => StopSignal::Terminate,
            Some(()) = next(&mut self.hangup) => StopSignal::Hangup,
            // The signal driver is gone only when the runtime is: nothing more will come.
            else => std::future::pending().await,
        }
    }
}

/// Whether this process ignores signal `number` (the `SigIgn` mask of /proc/self/status).
fn is_ignored(number: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    match (mask, u32::try_from(number - 1)) {
        (Some(mask), Ok(bit)) if bit < 64 => mask & (1u64 << bit) != 0,
        _ => false,
    }
}

/// The run's result: failure when a job failed, cancelled when a job was cancelled.
fn overall(graphs: &[RunGraph]) -> Conclusion {
    let conclusions: Vec<Conclusion> = graphs.iter().filter_map(RunGraph::conclusion).collect();
    if conclusions.contains(&Conclusion::Failure) {
        Conclusion::Failure
    } else if conclusions.contains(&Conclusion::Cancelled) {
        Conclusion::Cancelled
    } else {
        Conclusion::Success
    }
}

/// `--job`: the keys of the named jobs and of every job they need, transitively. `None` when
/// no job was named (everything runs).
fn selected_keys(plan: &WorkflowPlan, jobs: &[String]) -> Option<HashSet<String>> {
    if jobs.is_empty() {
        return None;
    }
    let mut selected: HashSet<String> = HashSet::new();
    let mut queue: Vec<String> = plan
        .jobs
        .iter()
        .filter(|j| {
            jobs.iter()
                .any(|want| *want == j.job_id || want == j.key.as_str())
        })
        .map(|j| j.key.as_str().to_owned())
        .collect();
    while let Some(key) = queue.pop() {
        if !selected.insert(key.clone()) {
            continue;
        }
        if let Some(job) = plan.jobs.iter().find(|j| j.key.as_str() == key) {
            queue.extend(job.needs.iter().map(|n| n.as_str().to_owned()));
        }
        // The jobs of a called workflow belong to their caller, whether the caller was named
        // or is needed by a named job.
        let prefix = format!("{key}/");
        queue.extend(
            plan.jobs
                .iter()
                .filter(|j| j.key.as_str().starts_with(&prefix))
                .map(|j| j.key.as_str().to_owned()),
        );
    }
    Some(selected)
}

/// Why a job cannot run on this machine: its `runs-on` names another operating system
/// (`windows-latest`, `macos-14`). Everything else runs on the host.
pub fn foreign_platform(labels: &[String]) -> Option<String> {
    let here = gantry_runner::context::runner_os();
    labels.iter().find_map(|label| {
        let lower = label.to_ascii_lowercase();
        let os = if lower.starts_with("windows") {
            "Windows"
        } else if lower.starts_with("macos") || lower == "macos" {
            "macOS"
        } else {
            return None;
        };
        (os != here)
            .then(|| format!("runs-on `{label}` needs a {os} machine; this one runs {here}"))
    })
}

fn matrix_text(matrix: &serde_json::Value) -> String {
    match matrix {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::commands::run::json_text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

fn emit(sink: &CliSink, job: &str, kind: EventKind) {
    sink.emit(Event {
        job: job.to_owned(),
        at_ms: gantry_runner::job::now_ms(),
        kind,
    });
}

fn warn_job(sink: &CliSink, job: &str, message: &str) {
    sink.with(|s| s.printer.warn(&format!("{job}: {message}")));
}

/// One leg on this machine.
struct LegTask {
    graph: usize,
    key: String,
    leg: usize,
    spec: JobSpec,
    secrets: IndexMap<String, String>,
    options: Arc<DriverOptions>,
    sink: Arc<CliSink>,
    cancel: Cancel,
    root: PathBuf,
}

impl LegTask {
    async fn run(mut self) -> LegDone {
        let outcome = match self.prepare().await {
            Ok(request) => {
                let workspace = request.workspace.clone();
                let temp = request.temp_dir.clone();
                let outcome = run_job(request, self.sink.clone(), self.cancel.clone()).await;
                if !self.options.keep_workspace {
                    if !self.options.workspace_here {
                        let _ = tokio::fs::remove_dir_all(&workspace).await;
                    }
                    let _ = tokio::fs::remove_dir_all(&temp).await;
                }
                outcome
            }
            Err(message) => {
                emit(
                    &self.sink,
                    &self.spec.key,
                    EventKind::JobStarted {
                        name: self.spec.name.clone(),
                    },
                );
                emit(
                    &self.sink,
                    &self.spec.key,
                    EventKind::Annotation {
                        step: None,
                        annotation: gantry_protocol::Annotation {
                            level: gantry_protocol::AnnotationLevel::Error,
                            message: message.clone(),
                            title: None,
                            file: None,
                            line: None,
                            end_line: None,
                            column: None,
                            end_column: None,
                        },
                    },
                );
                let reason = FailureReason::SetupFailed(message);
                emit(
                    &self.sink,
                    &self.spec.key,
                    EventKind::JobFinished {
                        conclusion: Conclusion::Failure,
                        reason: Some(reason.clone()),
                        outputs: IndexMap::new(),
                        duration_ms: 0,
                    },
                );
                JobOutcome {
                    conclusion: Conclusion::Failure,
                    reason: Some(reason),
                    outputs: IndexMap::new(),
                }
            }
        };
        LegDone {
            graph: self.graph,
            key: self.key,
            leg: self.leg,
            outcome,
        }
    }

    /// The leg's directories, and its workspace holding the run's commit.
    async fn prepare(&mut self) -> Result<JobRequest, String> {
        let options = &self.options;
        let dir = self
            .root
            .join(crate::run::store::log_file_name(&self.spec.key).trim_end_matches(".log"));
        let temp_dir = dir.join("temp");
        tokio::fs::create_dir_all(&temp_dir)
            .await
            .map_err(|e| format!("could not create {}: {e}", temp_dir.display()))?;
        let source = RepoSource {
            url: file_url(&options.repo.root),
            sha: options.sha.clone(),
            git_ref: options.git_ref.clone(),
        };
        let workspace = if options.workspace_here {
            options.repo.root.clone()
        } else {
            let workspace = dir.join("work");
            checkout(
                &source,
                &workspace,
                &CheckoutOptions::default(),
                &mut |_| {},
            )
            .await
            .map_err(|e| format!("could not prepare the job's workspace: {e}"))?;
            workspace
        };
        let tool_cache = std::env::var_os("RUNNER_TOOL_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/gantry/tool-cache"))
            })
            .unwrap_or_else(|| dir.join("tool-cache"));
        let mut spec = self.spec.clone();
        // --env values sit under the workflow's own env.
        if !options.extra_env.is_empty() {
            let mut env = options.extra_env.clone();
            env.extend(spec.workflow_env);
            spec.workflow_env = env;
        }
        Ok(JobRequest {
            spec,
            secrets: self.secrets.clone(),
            workspace,
            temp_dir,
            tool_cache,
            source: Some(source),
            workspace_is_working_tree: options.workspace_here,
            base_env: host_env(),
            tracking_id: format!(
                "{}-{}-{}",
                std::process::id(),
                options.run_number,
                self.spec.key
            ),
            step_files: gantry_runner::StepFiles::default(),
            options: RunnerOptions {
                stop: StopPolicy {
                    interrupt_grace: options.interrupt_grace,
                    terminate_grace: options.terminate_grace,
                },
                skip_unavailable_actions: options.skip_unavailable_actions,
                step_debug: options.step_debug,
                runner_name: format!(
                    "gantry-{}",
                    hostname().unwrap_or_else(|| "local".to_owned())
                ),
            },
        })
    }
}

/// The environment step processes start from: this process's, without variables that would
/// make a job believe it runs inside another CI's job.
fn host_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            !(k.starts_with("GITHUB_")
                || k.starts_with("RUNNER_")
                || k.starts_with("ACTIONS_")
                || k.starts_with("INPUT_")
                || k == "GANTRY_TRACKING_ID")
        })
        .collect()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
