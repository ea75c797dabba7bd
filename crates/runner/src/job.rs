//! Running one job: contexts, env, steps in order with their `if:` and status functions,
//! timeouts and cancellation, environment files, outputs. Everything the job does is reported as
//! events to the sink.

use crate::action::{self, ActionKind};
use crate::checkout::RepoSource;
use crate::command::CommandSettings;
use crate::context;
use crate::file_command::{self, PrependPath};
use crate::mask::Masker;
use crate::output::OutputPump;
use crate::process::{self, ProcessSpec, StopCause, StopPolicy};
use crate::shell::Shell;
use crate::step_files::{FileCommands, StepFiles};
use gantry_expr::{Contexts, JobStatus, Template, Value};
use gantry_protocol::{
    Annotation, AnnotationLevel, Conclusion, Event, EventKind, FailureReason, JobSpec, StepKind,
    StepSpec,
};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Receives the runner's events. Called in order, from the job's task; implementations should
/// be quick (write to a buffer, a file, a channel).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// How the runner behaves, beyond the job spec.
#[derive(Clone, Debug)]
pub struct RunnerOptions {
    pub stop: StopPolicy,
    /// Skip steps using actions Gantry cannot run (with a warning) instead of failing the job.
    pub skip_unavailable_actions: bool,
    /// `ACTIONS_STEP_DEBUG`: show `::debug::` messages.
    pub step_debug: bool,
    /// `RUNNER_NAME`.
    pub runner_name: String,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            stop: StopPolicy::default(),
            skip_unavailable_actions: false,
            step_debug: false,
            runner_name: "gantry".to_owned(),
        }
    }
}

/// Everything needed to run one job.
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub spec: JobSpec,
    /// Secret values by name; masked in every line the job prints.
    pub secrets: IndexMap<String, String>,
    /// `GITHUB_WORKSPACE`: exists, may already hold the repository.
    pub workspace: PathBuf,
    /// `RUNNER_TEMP`: an empty directory owned by this job.
    pub temp_dir: PathBuf,
    /// `RUNNER_TOOL_CACHE`.
    pub tool_cache: PathBuf,
    /// Where `actions/checkout` fetches the run's commit from.
    pub source: Option<RepoSource>,
    /// The workspace is the user's own working tree (`gantry run --workspace-here`):
    /// `actions/checkout` of the run's repository leaves it as it is.
    pub workspace_is_working_tree: bool,
    /// The environment step processes start from (the host's, for the host backend).
    pub base_env: Vec<(String, String)>,
    /// Unique id of this job execution, for finding its leftover processes.
    pub tracking_id: String,
    /// Step files kept from earlier jobs in the same `temp_dir` (an agent's job slot), and for
    /// later ones: `StepFiles::default()` when the directory is new.
    pub step_files: StepFiles,
    pub options: RunnerOptions,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    pub conclusion: Conclusion,
    pub reason: Option<FailureReason>,
    pub outputs: IndexMap<String, String>,
}

/// Cancellation of a job: `cancel` asks for GitHub's graceful cancellation (the running step is
/// interrupted, `always()` steps still run); `force` stops everything at once.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    pub cancel: CancellationToken,
    pub force: CancellationToken,
}

/// Runs a job to its end. Never panics on user input; every failure is reported in the events
/// and the outcome.
pub async fn run_job(request: JobRequest, sink: Arc<dyn EventSink>, cancel: Cancel) -> JobOutcome {
    let started = Instant::now();
    let pids = process::PidMark::now();
    let mut job = JobRun::new(request, sink, cancel);
    job.emit(EventKind::JobStarted {
        name: job.req.spec.name.clone(),
    });
    let (conclusion, reason) = job.run().await;
    let outputs = job.evaluate_outputs();
    // Nothing the job started outlives it.
    let leftovers = process::kill_tracked_processes(&job.req.tracking_id, pids);
    if leftovers > 0 {
        job.log(
            None,
            &format!("Cleaned up {leftovers} process(es) the job left running\n"),
        );
    }
    job.emit(EventKind::JobFinished {
        conclusion,
        reason: reason.clone(),
        outputs: outputs.clone(),
        duration_ms: millis(started.elapsed()),
    });
    JobOutcome {
        conclusion,
        reason,
        outputs,
    }
}

/// State of one running job.
pub(crate) struct JobRun {
    pub(crate) req: JobRequest,
    sink: Arc<dyn EventSink>,
    cancel: Cancel,
    /// Cancelled by the outer cancel or by the job timeout.
    job_stop: CancellationToken,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) masker: Masker,
    /// Job env: workflow env, job env, then `GITHUB_ENV` additions of earlier steps.
    pub(crate) env: IndexMap<String, String>,
    /// `GITHUB_PATH` additions.
    pub(crate) path_additions: PrependPath,
    /// Failure of an earlier step (without continue-on-error).
    pub(crate) failed: bool,
    /// Contexts that do not change during the job.
    base: Contexts,
    event_path: PathBuf,
    next_step_index: usize,
    /// Script and file-command files of finished steps, recycled for the next ones.
    step_files: StepFiles,
    /// The `steps` context of the job's own steps.
    steps_ctx: gantry_expr::Object,
}

/// Where a step runs: the job itself, or inside a composite action.
pub(crate) struct Scope {
    pub(crate) steps: gantry_expr::Object,
    /// `inputs` of a composite action.
    pub(crate) inputs: Option<Value>,
    /// Env the composite action's `runs.steps[*].env` sits on top of.
    pub(crate) extra_env: IndexMap<String, String>,
    /// `github.action_path` for composite actions.
    pub(crate) action_path: Option<PathBuf>,
    /// Step events of a composite action go to the outer step.
    pub(crate) outer_step: Option<usize>,
    /// Nesting level of composite actions (0 for the job's own steps).
    pub(crate) depth: usize,
    /// A step of this scope failed (without continue-on-error).
    pub(crate) failed: bool,
}

impl Scope {
    fn job() -> Scope {
        Scope {
            steps: gantry_expr::Object::new(),
            inputs: None,
            extra_env: IndexMap::new(),
            action_path: None,
            outer_step: None,
            depth: 0,
            failed: false,
        }
    }
}

/// The result of one step.
#[derive(Clone, Debug)]
pub(crate) struct StepResult {
    pub(crate) outcome: Conclusion,
    pub(crate) conclusion: Conclusion,
    pub(crate) outputs: IndexMap<String, String>,
}

impl JobRun {
    fn new(req: JobRequest, sink: Arc<dyn EventSink>, cancel: Cancel) -> JobRun {
        let mut masker = Masker::new();
        for value in req.secrets.values() {
            masker.add_secret(value);
        }
        let job_stop = cancel.cancel.child_token();
        let base = context::base_contexts(&req);
        let event_path = req.temp_dir.join("_github_workflow").join("event.json");
        let step_files = req.step_files.clone();
        JobRun {
            req,
            sink,
            cancel,
            job_stop,
            timed_out: Arc::default(),
            masker,
            env: IndexMap::new(),
            path_additions: PrependPath::new(),
            failed: false,
            base,
            event_path,
            next_step_index: 0,
            step_files,
            steps_ctx: gantry_expr::Object::new(),
        }
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        self.sink.emit(Event {
            job: self.req.spec.key.clone(),
            at_ms: now_ms(),
            kind,
        });
    }

    /// A line from the runner itself, masked.
    pub(crate) fn log(&self, step: Option<usize>, text: &str) {
        self.emit(EventKind::Log {
            step,
            text: self.masker.mask(text),
        });
    }

    pub(crate) fn annotate(&self, step: Option<usize>, level: AnnotationLevel, message: &str) {
        self.emit(EventKind::Annotation {
            step,
            annotation: Annotation {
                level,
                message: self.masker.mask(message),
                title: None,
                file: None,
                line: None,
                end_line: None,
                column: None,
                end_column: None,
            },
        });
    }

    fn status(&self, scope: &Scope) -> JobStatus {
        if self.job_stop.is_cancelled() {
            JobStatus::Cancelled
        } else if self.failed || scope.failed {
            JobStatus::Failure
        } else {
            JobStatus::Success
        }
    }

    async fn run(&mut self) -> (Conclusion, Option<FailureReason>) {
        if let Err(message) = self.prepare().await {
            self.annotate(None, AnnotationLevel::Error, &message);
            return (
                Conclusion::Failure,
                Some(FailureReason::SetupFailed(message)),
            );
        }
        self.start_timeout();

        let steps = self.req.spec.steps.clone();
        let mut scope = Scope::job();
        for step in &steps {
            let index = self.next_step_index;
            self.next_step_index += 1;
            let result = self.run_step(index, step, &mut scope).await;
            if result.conclusion == Conclusion::Failure {
                self.failed = true;
            }
            if self.cancel.force.is_cancelled() {
                break;
            }
        }
        self.steps_ctx = scope.steps;

        if self.timed_out.load(Ordering::SeqCst) {
            let minutes = self.req.spec.timeout_minutes;
            self.annotate(
                None,
                AnnotationLevel::Error,
                &format!("The job has exceeded the maximum execution time of {minutes} minutes."),
            );
            (Conclusion::Failure, Some(FailureReason::TimedOut))
        } else if self.job_stop.is_cancelled() {
            (Conclusion::Cancelled, Some(FailureReason::Cancelled))
        } else if self.failed {
            (Conclusion::Failure, Some(FailureReason::StepFailed))
        } else {
            (Conclusion::Success, None)
        }
    }

    /// Event file, job env, and actions checked before any step runs.
    async fn prepare(&mut self) -> Result<(), String> {
        let event = self
            .req
            .spec
            .github
            .get("event")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(dir) = self.event_path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
        }
        let text = serde_json::to_vec_pretty(&event).map_err(|e| e.to_string())?;
        self.step_files
            .lock()
            .event(&self.event_path, &text)
            .map_err(|e| format!("could not write {}: {e}", self.event_path.display()))?;

        // Workflow env, then job env; each value sees the contexts known at job start.
        let mut env = IndexMap::new();
        let layers = [
            ("workflow", self.req.spec.workflow_env.clone()),
            ("job", self.req.spec.env.clone()),
        ];
        for (level, layer) in layers {
            for (name, template) in layer {
                let ctx = self.contexts(&Scope::job(), &env, JobStatus::Success);
                let value = evaluate_string(&template, &ctx)
                    .map_err(|e| format!("{level} env `{name}`: {e}"))?;
                env.insert(name, value);
            }
        }
        self.env = env;

        let unavailable: Vec<String> = self
            .req
            .spec
            .steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Uses { uses, .. } => match action::classify(uses) {
                    ActionKind::Unavailable(_) => Some(uses.clone()),
                    _ => None,
                },
                StepKind::Run { .. } => None,
            })
            .collect();
        if !unavailable.is_empty() {
            let list = unavailable.join(", ");
            if self.req.options.skip_unavailable_actions {
                self.annotate(
                    None,
                    AnnotationLevel::Warning,
                    &format!(
                        "Skipping steps that use actions Gantry cannot run: {list}. The job may \
                         not behave as it does in CI."
                    ),
                );
            } else {
                return Err(format!(
                    "This job uses actions Gantry cannot run: {list}. Gantry runs \
                     actions/checkout and local composite actions (uses: ./path). Use \
                     --skip-unavailable-actions to skip these steps."
                ));
            }
        }
        Ok(())
    }

    fn start_timeout(&self) {
        let minutes = self.req.spec.timeout_minutes;
        if !(minutes.is_finite() && minutes > 0.0) {
            return;
        }
        let stop = self.job_stop.clone();
        let timed_out = self.timed_out.clone();
        let limit = Duration::from_secs_f64(minutes * 60.0);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    timed_out.store(true, Ordering::SeqCst);
                    stop.cancel();
                }
                _ = stop.cancelled() => {}
            }
        });
    }

    /// The contexts for an expression of a step in `scope`, with `env` as the env context.
    pub(crate) fn contexts(
        &self,
        scope: &Scope,
        env: &IndexMap<String, String>,
        status: JobStatus,
    ) -> Contexts {
        let mut ctx = self.base.clone();
        let mut env_obj = gantry_expr::Object::new();
        for (k, v) in env {
            env_obj.insert(k.clone(), Value::String(v.clone()));
        }
        ctx.insert("env", Value::Object(env_obj));
        ctx.insert("steps", Value::Object(scope.steps.clone()));
        if let Some(inputs) = &scope.inputs {
            ctx.insert("inputs", inputs.clone());
        }
        let mut job = gantry_expr::Object::new();
        job.insert("status", Value::String(status.as_str().to_owned()));
        ctx.insert("job", Value::Object(job));
        if let Some(path) = &scope.action_path
            && let Some(Value::Object(github)) = ctx.get_mut("github")
        {
            github.insert(
                "action_path",
                Value::String(path.to_string_lossy().into_owned()),
            );
        }
        ctx.with_status(status).with_workspace(&self.req.workspace)
    }

    /// Runs one step (of the job or of a composite action) and records it in `scope.steps`.
    pub(crate) async fn run_step(
        &mut self,
        index: usize,
        step: &StepSpec,
        scope: &mut Scope,
    ) -> StepResult {
        let event_step = scope.outer_step.unwrap_or(index);
        let status = self.status(scope);
        let mut env = self.env.clone();
        env.extend(scope.extra_env.clone());

        // Step env sees the env context of the job, as GitHub evaluates it.
        let mut step_env_error = None;
        {
            let ctx = self.contexts(scope, &env, status);
            let mut evaluated = IndexMap::new();
            for (name, template) in &step.env {
                match evaluate_string(template, &ctx) {
                    Ok(v) => {
                        evaluated.insert(name.clone(), v);
                    }
                    Err(e) => {
                        step_env_error = Some(format!("step env `{name}`: {e}"));
                        break;
                    }
                }
            }
            env.extend(evaluated);
        }
        let ctx = self.contexts(scope, &env, status);
        let name = match &step.name {
            Some(template) => evaluate_string(template, &ctx).unwrap_or_else(|_| template.clone()),
            None => step.default_name.clone(),
        };
        let name = self.masker.mask(&name);

        // `if:` decides whether the step runs at all.
        let condition = gantry_expr::parse(&step.condition, &gantry_expr::ParseOptions::runtime())
            .and_then(|expr| gantry_expr::evaluate_condition(&expr, &ctx));
        let run = match condition {
            Ok(run) => run,
            Err(e) => {
                self.emit_step_start(scope, event_step, &name);
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("The `if:` of step \"{name}\" could not be evaluated: {e}"),
                );
                return self.finish_step(
                    scope,
                    step,
                    event_step,
                    Conclusion::Failure,
                    false,
                    0,
                    IndexMap::new(),
                );
            }
        };
        if !run {
            let result = StepResult {
                outcome: Conclusion::Skipped,
                conclusion: Conclusion::Skipped,
                outputs: IndexMap::new(),
            };
            record_step(&mut scope.steps, step, &result);
            if scope.outer_step.is_none() {
                self.emit(EventKind::StepStarted {
                    step: event_step,
                    name,
                });
                self.emit(EventKind::StepFinished {
                    step: event_step,
                    outcome: Conclusion::Skipped,
                    conclusion: Conclusion::Skipped,
                    duration_ms: 0,
                });
            }
            return result;
        }

        self.emit_step_start(scope, event_step, &name);
        let started = Instant::now();
        let continue_on_error = match evaluate_string(&step.continue_on_error, &ctx) {
            Ok(v) => is_true(&v),
            Err(e) => {
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("continue-on-error: {e}"),
                );
                false
            }
        };
        if let Some(message) = step_env_error {
            self.annotate(Some(event_step), AnnotationLevel::Error, &message);
            return self.finish_step(
                scope,
                step,
                event_step,
                Conclusion::Failure,
                continue_on_error,
                millis(started.elapsed()),
                IndexMap::new(),
            );
        }
        let timeout = match &step.timeout_minutes {
            Some(template) => match evaluate_string(template, &ctx)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{v}` is not a number of minutes"))
                }) {
                Ok(minutes) if minutes > 0.0 && minutes.is_finite() => {
                    Some(Duration::from_secs_f64(minutes * 60.0))
                }
                Ok(_) => None,
                Err(e) => {
                    self.annotate(
                        Some(event_step),
                        AnnotationLevel::Error,
                        &format!("timeout-minutes: {e}"),
                    );
                    return self.finish_step(
                        scope,
                        step,
                        event_step,
                        Conclusion::Failure,
                        continue_on_error,
                        millis(started.elapsed()),
                        IndexMap::new(),
                    );
                }
            },
            None => None,
        };

        let (outcome, outputs) = match &step.kind {
            StepKind::Run { script } => {
                self.run_script(event_step, step, script, &env, &ctx, scope, timeout)
                    .await
            }
            StepKind::Uses { uses, with } => {
                action::run_action(
                    self, event_step, step, uses, with, &env, &ctx, scope, timeout,
                )
                .await
            }
        };
        self.finish_step(
            scope,
            step,
            event_step,
            outcome,
            continue_on_error,
            millis(started.elapsed()),
            outputs,
        )
    }

    fn emit_step_start(&self, scope: &Scope, event_step: usize, name: &str) {
        if scope.outer_step.is_none() {
            self.emit(EventKind::StepStarted {
                step: event_step,
                name: name.to_owned(),
            });
        } else {
            self.emit(EventKind::GroupStarted {
                step: Some(event_step),
                title: name.to_owned(),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_step(
        &mut self,
        scope: &mut Scope,
        step: &StepSpec,
        event_step: usize,
        outcome: Conclusion,
        continue_on_error: bool,
        duration_ms: u64,
        outputs: IndexMap<String, String>,
    ) -> StepResult {
        let conclusion = if outcome == Conclusion::Failure && continue_on_error {
            Conclusion::Success
        } else {
            outcome
        };
        let result = StepResult {
            outcome,
            conclusion,
            outputs,
        };
        record_step(&mut scope.steps, step, &result);
        if scope.outer_step.is_none() {
            self.emit(EventKind::StepFinished {
                step: event_step,
                outcome,
                conclusion,
                duration_ms,
            });
        } else {
            self.emit(EventKind::GroupEnded {
                step: Some(event_step),
            });
        }
        result
    }

    /// A `run:` step: the script is evaluated, written to a file and run by its shell.
    #[allow(clippy::too_many_arguments)]
    async fn run_script(
        &mut self,
        event_step: usize,
        step: &StepSpec,
        script: &str,
        env: &IndexMap<String, String>,
        ctx: &Contexts,
        scope: &Scope,
        timeout: Option<Duration>,
    ) -> (Conclusion, IndexMap<String, String>) {
        let script = match evaluate_string(script, ctx) {
            Ok(s) => s,
            Err(e) => {
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("The script of this step could not be evaluated: {e}"),
                );
                return (Conclusion::Failure, IndexMap::new());
            }
        };
        let shell_name = step
            .shell
            .clone()
            .or_else(|| self.req.spec.defaults.shell.clone());
        let shell = match Shell::parse(shell_name.as_deref()) {
            Ok(shell) => shell,
            Err(e) => {
                self.annotate(Some(event_step), AnnotationLevel::Error, &e.to_string());
                return (Conclusion::Failure, IndexMap::new());
            }
        };
        let working_directory = match self.working_directory(step, scope, ctx) {
            Ok(dir) => dir,
            Err(message) => {
                self.annotate(Some(event_step), AnnotationLevel::Error, &message);
                return (Conclusion::Failure, IndexMap::new());
            }
        };
        let script_path =
            self.req
                .temp_dir
                .join(format!("{}{}", self.unique_name("step"), shell.extension()));
        if let Err(e) = self
            .step_files
            .lock()
            .script(&script_path, script.as_bytes())
        {
            self.annotate(
                Some(event_step),
                AnnotationLevel::Error,
                &format!(
                    "could not write the step's script {}: {e}",
                    script_path.display()
                ),
            );
            return (Conclusion::Failure, IndexMap::new());
        }
        let result = self
            .run_command(
                event_step,
                &shell,
                &script_path,
                env,
                &working_directory,
                scope,
                timeout,
            )
            .await;
        self.step_files.lock().give_back_script(&script_path);
        result
    }

    /// Resolves `working-directory` (step, then `defaults.run`) against the workspace.
    fn working_directory(
        &self,
        step: &StepSpec,
        scope: &Scope,
        ctx: &Contexts,
    ) -> Result<PathBuf, String> {
        let written = match (
            &step.working_directory,
            &self.req.spec.defaults.working_directory,
        ) {
            (Some(dir), _) => Some(dir.clone()),
            // Composite action steps do not inherit the job's defaults.
            (None, Some(dir)) if scope.outer_step.is_none() => Some(dir.clone()),
            _ => None,
        };
        let Some(written) = written else {
            return Ok(self.req.workspace.clone());
        };
        let evaluated =
            evaluate_string(&written, ctx).map_err(|e| format!("working-directory: {e}"))?;
        let dir = self.req.workspace.join(&evaluated);
        if !dir.is_dir() {
            return Err(format!(
                "working-directory `{evaluated}` does not exist (looked for {})",
                dir.display()
            ));
        }
        Ok(dir)
    }

    /// Starts the shell on a script file with the environment files set up, pumps its output,
    /// and applies the environment files afterwards.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_command(
        &mut self,
        event_step: usize,
        shell: &Shell,
        script_path: &Path,
        env: &IndexMap<String, String>,
        working_directory: &Path,
        scope: &Scope,
        timeout: Option<Duration>,
    ) -> (Conclusion, IndexMap<String, String>) {
        let files = match self.create_file_commands() {
            Ok(files) => files,
            Err(message) => {
                self.annotate(Some(event_step), AnnotationLevel::Error, &message);
                return (Conclusion::Failure, IndexMap::new());
            }
        };
        let process_env = self.process_env(env, &files, scope);
        let path_var = process_env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (program, args) = match shell.command(script_path, &path_var) {
            Ok(command) => command,
            Err(e) => {
                self.step_files.lock().give_back_commands(files);
                self.annotate(Some(event_step), AnnotationLevel::Error, &e.to_string());
                return (Conclusion::Failure, IndexMap::new());
            }
        };
        let spec = ProcessSpec {
            program,
            args,
            env: process_env,
            cwd: working_directory.to_owned(),
        };

        // Steps that start after a cancel (always() steps) are only stopped by a forced stop.
        let stop_token = if self.job_stop.is_cancelled() {
            self.cancel.force.clone()
        } else {
            self.job_stop.clone()
        };
        let stop = async move {
            let timeout_sleep = async {
                match timeout {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop_token.cancelled() => StopCause::Cancelled,
                _ = timeout_sleep => StopCause::TimedOut,
            }
        };
        // A forced stop (a second Ctrl-C) kills the step at once, even mid-way through the
        // grace periods of a first stop.
        let force = self.cancel.force.clone();
        let kill = async move { force.cancelled().await };
        let policy = self.req.options.stop;

        let sink = self.sink.clone();
        let job_key = self.req.spec.key.clone();
        let mut settings = CommandSettings::from_env(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.req.options.step_debug,
        );
        settings.workspace = Some(self.req.workspace.to_string_lossy().into_owned());
        let mut pump = OutputPump::new(
            job_key,
            Some(event_step),
            sink,
            &mut self.masker,
            settings,
            self.req.options.step_debug,
        );
        let exit =
            process::run_process(&spec, &mut |bytes| pump.feed(bytes), stop, kill, policy).await;
        let pump_result = pump.finish();

        let mut outcome = match &exit {
            Ok(exit) if exit.success() => Conclusion::Success,
            Ok(exit) => {
                let message = match (exit.stopped, exit.code, exit.signal) {
                    (Some(StopCause::TimedOut), _, _) => format!(
                        "The step has timed out after {} minutes.",
                        timeout.map(|t| t.as_secs_f64() / 60.0).unwrap_or_default()
                    ),
                    (Some(StopCause::Cancelled), _, _) => "The operation was canceled.".to_owned(),
                    (None, Some(code), _) => format!("Process completed with exit code {code}."),
                    (None, None, Some(signal)) => {
                        format!("Process was killed by signal {signal}.")
                    }
                    (None, None, None) => "Process ended abnormally.".to_owned(),
                };
                self.annotate(Some(event_step), AnnotationLevel::Error, &message);
                if exit.stopped == Some(StopCause::Cancelled) {
                    Conclusion::Cancelled
                } else {
                    Conclusion::Failure
                }
            }
            Err(e) => {
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!(
                        "could not start `{}` in {}: {e}",
                        spec.program.display(),
                        working_directory.display()
                    ),
                );
                Conclusion::Failure
            }
        };
        for (name, value) in pump_result.env {
            self.env.insert(name, value);
        }
        self.path_additions.extend(pump_result.paths);
        // The command processor already reported why as an error annotation.
        if pump_result.failure.is_some() && outcome == Conclusion::Success {
            outcome = Conclusion::Failure;
        }
        let mut outputs: IndexMap<String, String> = pump_result.outputs.into_iter().collect();
        outputs.extend(
            self.apply_file_commands(event_step, files, &mut outcome)
                .await,
        );
        if outcome == Conclusion::Cancelled {
            outcome = Conclusion::Failure;
            // GitHub records a cancelled step's outcome as failure... unless the job was
            // cancelled, in which case the step shows as cancelled.
            if self.job_stop.is_cancelled() || self.cancel.force.is_cancelled() {
                outcome = Conclusion::Cancelled;
            }
        }
        (outcome, outputs)
    }

    pub(crate) fn unique_name(&self, prefix: &str) -> String {
        self.step_files.lock().unique_name(prefix)
    }

    /// Empty file-command files for a step.
    fn create_file_commands(&self) -> Result<FileCommands, String> {
        let dir = self.req.temp_dir.join("_runner_file_commands");
        let suffix = self.unique_name("cmd");
        self.step_files.lock().commands(&dir, &suffix).map_err(|e| {
            format!(
                "could not create the file-command files in {}: {e}",
                dir.display()
            )
        })
    }

    /// The environment of a step process: the base environment, GitHub's default variables,
    /// the job's and step's env, and PATH with `GITHUB_PATH` additions in front.
    fn process_env(
        &self,
        env: &IndexMap<String, String>,
        files: &FileCommands,
        scope: &Scope,
    ) -> Vec<(String, String)> {
        let mut vars: IndexMap<String, String> = self.req.base_env.iter().cloned().collect();
        vars.insert("CI".into(), "true".into());
        for (k, v) in env {
            vars.insert(k.clone(), v.clone());
        }
        for (k, v) in context::default_env(&self.req, &self.event_path) {
            vars.insert(k, v);
        }
        if let Some(Value::Object(inputs)) = &scope.inputs {
            for (k, v) in inputs.iter() {
                let name = format!("INPUT_{}", k.replace(' ', "_").to_uppercase());
                vars.insert(name, v.to_coerced_string());
            }
        }
        if let Some(path) = &scope.action_path {
            vars.insert(
                "GITHUB_ACTION_PATH".into(),
                path.to_string_lossy().into_owned(),
            );
        }
        vars.insert("GITHUB_OUTPUT".into(), path_string(&files.output));
        vars.insert("GITHUB_ENV".into(), path_string(&files.env));
        vars.insert("GITHUB_PATH".into(), path_string(&files.path));
        vars.insert("GITHUB_STATE".into(), path_string(&files.state));
        vars.insert("GITHUB_STEP_SUMMARY".into(), path_string(&files.summary));
        vars.insert(process::TRACKING_VAR.into(), self.req.tracking_id.clone());
        if !self.path_additions.entries().is_empty() {
            let base_path = vars.get("PATH").cloned().unwrap_or_default();
            vars.insert("PATH".into(), self.path_additions.to_path(&base_path, ':'));
        }
        vars.into_iter().collect()
    }

    /// Reads the step's environment files: outputs are returned, env and path apply to the
    /// following steps, the summary becomes an event.
    async fn apply_file_commands(
        &mut self,
        event_step: usize,
        files: FileCommands,
        outcome: &mut Conclusion,
    ) -> IndexMap<String, String> {
        let mut outputs = IndexMap::new();
        let output = file_command::read_command_file(Some(&files.output))
            .and_then(|text| file_command::parse_env_file(&text.unwrap_or_default()));
        match output {
            Ok(values) => outputs.extend(values),
            Err(e) => {
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("GITHUB_OUTPUT: {e}"),
                );
                *outcome = Conclusion::Failure;
            }
        }
        let env = file_command::read_command_file(Some(&files.env))
            .and_then(|text| file_command::parse_github_env(&text.unwrap_or_default()));
        match env {
            Ok(env) => {
                for issue in env.issues {
                    self.emit(EventKind::Annotation {
                        step: Some(event_step),
                        annotation: issue,
                    });
                }
                self.env.extend(env.values);
            }
            Err(e) => {
                self.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("GITHUB_ENV: {e}"),
                );
                *outcome = Conclusion::Failure;
            }
        }
        match file_command::read_command_file(Some(&files.path)) {
            Ok(text) => self
                .path_additions
                .extend(file_command::parse_path_file(&text.unwrap_or_default())),
            Err(e) => self.annotate(
                Some(event_step),
                AnnotationLevel::Warning,
                &format!("GITHUB_PATH: {e}"),
            ),
        }
        match file_command::read_step_summary(Some(&files.summary), &self.masker) {
            Ok(Some(markdown)) => self.emit(EventKind::StepSummary {
                step: event_step,
                markdown,
            }),
            Ok(None) => {}
            Err(e) => self.annotate(Some(event_step), AnnotationLevel::Error, &e.to_string()),
        }
        self.step_files.lock().give_back_commands(files);
        outputs
    }

    /// `jobs.<id>.outputs`, evaluated at the end of the job. Outputs holding a secret are
    /// dropped, as GitHub does.
    fn evaluate_outputs(&self) -> IndexMap<String, String> {
        let mut outputs = IndexMap::new();
        if self.req.spec.outputs.is_empty() {
            return outputs;
        }
        let scope = Scope {
            steps: self.steps_ctx.clone(),
            ..Scope::job()
        };
        let ctx = self.contexts(&scope, &self.env, self.status(&scope));
        for (name, template) in &self.req.spec.outputs {
            match evaluate_string(template, &ctx) {
                Ok(value) => {
                    if self.masker.mask(&value) != value {
                        self.annotate(
                            None,
                            AnnotationLevel::Warning,
                            &format!("Skip output '{name}' since it may contain secret."),
                        );
                    } else {
                        outputs.insert(name.clone(), value);
                    }
                }
                Err(e) => self.annotate(
                    None,
                    AnnotationLevel::Warning,
                    &format!("output `{name}` could not be evaluated: {e}"),
                ),
            }
        }
        outputs
    }
}

/// Adds a step's result to a `steps` context (only steps with an id the user wrote... and
/// generated ids, which nobody can reference, are harmless to add).
fn record_step(steps: &mut gantry_expr::Object, step: &StepSpec, result: &StepResult) {
    let mut outputs = gantry_expr::Object::new();
    for (k, v) in &result.outputs {
        outputs.insert(k.clone(), Value::String(v.clone()));
    }
    let mut entry = gantry_expr::Object::new();
    entry.insert("outputs", Value::Object(outputs));
    entry.insert("outcome", Value::String(result.outcome.as_str().to_owned()));
    entry.insert(
        "conclusion",
        Value::String(result.conclusion.as_str().to_owned()),
    );
    steps.insert(step.id.clone(), Value::Object(entry));
}

/// Evaluates a template to the string it stands for.
pub(crate) fn evaluate_string(
    template: &str,
    ctx: &Contexts,
) -> Result<String, gantry_expr::Error> {
    if !template.contains("${{") {
        return Ok(template.to_owned());
    }
    Template::parse(template)?.evaluate_to_string(ctx)
}

/// GitHub's truthiness for values such as `continue-on-error: ${{ ... }}`.
fn is_true(value: &str) -> bool {
    let v = value.trim();
    v.eq_ignore_ascii_case("true")
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, the time stamp of events.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
