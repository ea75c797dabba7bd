//! `gantry plan`: which workflows and jobs an event would start, every matrix leg, and why
//! anything is skipped, without running anything.
//!
//! The event is built as `gantry run` builds it (see `crate::event`): the ref defaults to the
//! current branch, the commit is `HEAD` (zeros outside git), the changed paths come from
//! `--changed`, else from git (a pull request: the merge base with the base branch to `HEAD`;
//! a push: the payload's `before` to `HEAD`, else `HEAD~1` to `HEAD`; the first commit: all of
//! its files). Uncommitted changes are not part of any event, so they are not counted. The
//! output says where the changed paths came from.

use crate::event::{ChangedSource, EventOptions, build_context, parse_pair};
use crate::exit::CommandError;
use crate::repo::{Repo, print_diagnostics};
use crate::style;
use clap::Args;
use gantry_workflow::load::LoadedWorkflow;
use gantry_workflow::model::Workflow;
use gantry_workflow::plan::{
    JobKey, Plan, PlannedJob, PlannedJobKind, PlannedMatrix, RunContext, WorkflowPlan, plan_run,
};
use owo_colors::OwoColorize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Show which workflows and jobs an event would start, every matrix leg, and why anything is
/// skipped. Nothing runs.
///
/// Without paths, plans every workflow of the repository (`.github/workflows`,
/// `.gantry/workflows`). Invalid workflows are reported as `gantry validate` reports them and
/// nothing is planned.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry plan                                   # a push of the current branch
  gantry plan --event push --ref refs/tags/v1.2.0
  gantry plan --event pull_request --base main --changed src/lib.rs --changed docs/a.md
  gantry plan --event workflow_dispatch --input level=debug --input dry-run=true
  gantry plan --payload event.json --json | jq '.workflows[] | select(.triggered)'
  gantry plan .github/workflows/ci.yml

Changed paths (for `paths:` filters): --changed, else git: a pull request compares the merge
base with the base branch to HEAD, a push compares the payload's `before` (or HEAD~1) to HEAD.
Uncommitted changes are not part of an event.

Exit status: 0 when planned (also when nothing is triggered), 2 when a workflow is invalid,
an input is wrong, or the arguments are.")]
pub struct PlanArgs {
    /// Workflow files to plan (default: the repository's workflow folders).
    pub paths: Vec<PathBuf>,
    /// The event: push, pull_request, workflow_dispatch, schedule, release, ...
    #[arg(long, short = 'e', default_value = "push")]
    pub event: String,
    /// The ref: `refs/heads/<branch>`, `refs/tags/<tag>`, or a branch name (default: the
    /// current branch; `refs/pull/1/merge` for pull requests).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// The base branch of a pull request (default: the payload's, else `main`).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The activity type (`opened`, `synchronize`, `published`...), checked against `types:`.
    #[arg(long, value_name = "TYPE")]
    pub action: Option<String>,
    /// A path changed by the event, relative to the repository root (repeatable; default:
    /// from git).
    #[arg(long = "changed", value_name = "PATH")]
    pub changed: Vec<String>,
    /// The event payload (`github.event`), a JSON file (default: one shaped like the forge's,
    /// made from the event).
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// A `workflow_dispatch` input (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub inputs: Vec<(String, String)>,
    /// A configuration variable of the `vars` context (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_plan(args: PlanArgs) -> Result<(), CommandError> {
    let repo = Repo::current()?;
    let loaded = repo.load_workflows(&args.paths)?;
    let count = print_invalid(&repo, &loaded);
    if count > 0 {
        let mut stderr = anstream::stderr();
        let text = format!(
            "{count} error{} in the workflows; nothing planned (see `gantry validate`)",
            if count == 1 { "" } else { "s" }
        );
        let _ = writeln!(stderr, "{}", text.red().bold());
        return Err(CommandError::INVALID);
    }
    let selected: Vec<Workflow> = loaded
        .iter()
        .filter_map(|l| l.parsed.workflow.clone())
        .collect();
    // Workflows that the selected ones may call, when files were named.
    let mut workflows = selected.clone();
    if !args.paths.is_empty()
        && let Ok(all) = repo.load_workflows(&[])
    {
        for other in all {
            if let Some(w) = other.parsed.valid_workflow()
                && !workflows.iter().any(|s| s.file == w.file)
            {
                workflows.push(w.clone());
            }
        }
    }

    let options = EventOptions {
        name: Some(args.event.clone()),
        git_ref: args.git_ref.clone(),
        base: args.base.clone(),
        payload: args.payload.clone(),
        changed: args.changed.clone(),
        inputs: args.inputs.clone(),
        // The plan shows the changed paths.
        need_changed: true,
    };
    let (mut ctx, source) = build_context(&repo, &options)?;
    if let Some(action) = &args.action {
        ctx.event.action = Some(action.clone());
    }
    ctx.vars = args.vars.iter().cloned().collect();

    let mut plan = plan_run(&workflows, &ctx);
    plan.workflows.truncate(selected.len());

    let text = if args.json {
        let value = plan_json(&plan, &ctx, &source);
        let mut text =
            serde_json::to_string_pretty(&value).map_err(|e| CommandError::Internal(e.into()))?;
        text.push('\n');
        text
    } else {
        render_plan(&plan, &ctx, &source, style::stdout_color())
    };
    let _ = anstream::stdout().write_all(text.as_bytes());

    let has_input_errors = plan
        .workflows
        .iter()
        .any(|w| w.triggered && !w.errors.is_empty());
    if has_input_errors {
        Err(CommandError::INVALID)
    } else {
        Ok(())
    }
}

/// Prints the diagnostics of the files with errors (warnings of valid files are printed too,
/// as `gantry validate` does) and returns the number of errors.
fn print_invalid(repo: &Repo, loaded: &[LoadedWorkflow]) -> usize {
    let with_diagnostics: Vec<LoadedWorkflow> = loaded
        .iter()
        .filter(|l| !l.parsed.diagnostics.is_empty())
        .cloned()
        .collect();
    if with_diagnostics.is_empty() {
        return 0;
    }
    print_diagnostics(repo, &with_diagnostics, style::stderr_color()).errors
}

/// Where the changed paths came from, in words.
fn changed_source_text(source: &ChangedSource) -> String {
    match source {
        ChangedSource::CommandLine => "from --changed".to_owned(),
        ChangedSource::Payload => "from the payload's `before` commit to HEAD".to_owned(),
        ChangedSource::Git(how) => format!("from {how}"),
        ChangedSource::Unknown => {
            "unknown outside a git repository; path filters are assumed to pass".to_owned()
        }
    }
}

/// The plan as JSON: the event, the changed paths and where they came from, and each workflow
/// with its jobs in needs order.
pub fn plan_json(plan: &Plan, ctx: &RunContext, source: &ChangedSource) -> Value {
    let workflows: Vec<Value> = plan.workflows.iter().map(workflow_json).collect();
    json!({
        "event": {
            "name": ctx.event.name,
            "action": ctx.event.action,
            "ref": ctx.event.git_ref,
            "base_ref": ctx.event.base_ref,
            "sha": ctx.sha,
        },
        "changed_paths": {
            "paths": ctx.event.changed_paths,
            "source": changed_source_text(source),
        },
        "workflows": workflows,
    })
}

fn workflow_json(workflow: &WorkflowPlan) -> Value {
    let jobs: Vec<Value> = workflow.jobs.iter().map(job_json).collect();
    json!({
        "file": workflow.file,
        "name": workflow.name,
        "triggered": workflow.triggered,
        "reason": workflow.reason,
        "errors": workflow.errors,
        "run_name": workflow.triggered.then_some(&workflow.run_name),
        "inputs": workflow.inputs,
        "jobs": jobs,
    })
}

fn job_json(job: &PlannedJob) -> Value {
    let (legs, matrix_at_run_time) = match &job.matrix {
        PlannedMatrix::Legs { legs } => (
            legs.iter()
                .map(|l| json!({"matrix": l.matrix, "name": l.name}))
                .collect::<Vec<_>>(),
            None,
        ),
        PlannedMatrix::RunTime { reason } => (Vec::new(), Some(reason)),
    };
    let uses = match &job.kind {
        PlannedJobKind::Call { uses } => Some(uses),
        PlannedJobKind::Run => None,
    };
    json!({
        "key": job.key,
        "id": job.job_id,
        "name": job.name,
        "file": job.file,
        "needs": job.needs,
        "parent": job.parent,
        "uses": uses,
        "legs": legs,
        "matrix_at_run_time": matrix_at_run_time,
        "skipped_reason": job.skipped_reason,
        "error": job.error,
    })
}

/// Most changed paths listed before "and N more".
const SHOWN_PATHS: usize = 10;

/// The plan for people: the event, then each workflow with its jobs in needs order, matrix
/// legs, and the reason for everything that will not run.
pub fn render_plan(plan: &Plan, ctx: &RunContext, source: &ChangedSource, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    let event = &ctx.event;
    let mut head = format!("Event {}", paint.bold(&event.name));
    if let Some(action) = &event.action {
        let _ = write!(head, " ({action})");
    }
    if let Some(git_ref) = &event.git_ref {
        let _ = write!(head, " on {git_ref}");
    }
    if let Some(base) = &event.base_ref {
        let _ = write!(head, " into {base}");
    }
    let short_sha: String = ctx.sha.chars().take(12).collect();
    let _ = writeln!(out, "{head} at {short_sha}");
    match &event.changed_paths {
        Some(paths) => {
            let _ = writeln!(
                out,
                "{} changed path{} ({})",
                paths.len(),
                if paths.len() == 1 { "" } else { "s" },
                changed_source_text(source)
            );
            for path in paths.iter().take(SHOWN_PATHS) {
                let _ = writeln!(out, "  {path}");
            }
            if paths.len() > SHOWN_PATHS {
                let _ = writeln!(out, "  ... and {} more", paths.len() - SHOWN_PATHS);
            }
        }
        None => {
            let _ = writeln!(out, "Changed paths {}", changed_source_text(source));
        }
    }

    let mut triggered = 0;
    let mut jobs_to_run = 0;
    let mut legs_to_run = 0;
    let mut skipped = 0;
    for workflow in &plan.workflows {
        out.push('\n');
        let title = format!("{} ({})", workflow.name, workflow.file);
        if !workflow.triggered {
            let _ = writeln!(out, "{} {}", paint.dim("○"), paint.dim(&title));
            let _ = writeln!(out, "  not triggered: {}", workflow.reason);
            continue;
        }
        triggered += 1;
        if !workflow.errors.is_empty() {
            let _ = writeln!(out, "{} {}", paint.red("✗"), paint.bold(&title));
            let _ = writeln!(out, "  {}", workflow.reason);
            for error in &workflow.errors {
                let _ = writeln!(out, "  {} {error}", paint.red("error:"));
            }
            continue;
        }
        let _ = writeln!(out, "{} {}", paint.green("●"), paint.bold(&title));
        let _ = writeln!(out, "  {}", workflow.reason);
        if workflow.run_name != workflow.name {
            let _ = writeln!(out, "  run name: {}", workflow.run_name);
        }
        let depth = job_depths(workflow);
        for job in &workflow.jobs {
            let indent = "  ".repeat(depth.get(&job.key).copied().unwrap_or(0) + 1);
            let mut line = format!("{indent}{}", paint.bold(&job.name));
            if job.name != job.key.as_str() {
                let _ = write!(line, " {}", paint.dim(&format!("[{}]", job.key)));
            }
            let mut notes = Vec::new();
            if !job.needs.is_empty() {
                let needs: Vec<&str> = job.needs.iter().map(JobKey::as_str).collect();
                notes.push(format!("needs {}", needs.join(", ")));
            }
            if let PlannedJobKind::Call { uses } = &job.kind {
                notes.push(format!("calls {uses}"));
            }
            if !notes.is_empty() {
                let _ = write!(line, "  {}", paint.dim(&format!("({})", notes.join("; "))));
            }
            let _ = writeln!(out, "{line}");
            let detail = format!("{indent}  ");
            if let Some(error) = &job.error {
                let _ = writeln!(out, "{detail}{} {error}", paint.red("fails:"));
            } else if let Some(reason) = &job.skipped_reason {
                skipped += 1;
                let _ = writeln!(out, "{detail}{} {reason}", paint.yellow("skipped:"));
                continue;
            }
            let runs_steps = job.kind == PlannedJobKind::Run;
            match &job.matrix {
                PlannedMatrix::Legs { legs } => {
                    if runs_steps && job.error.is_none() {
                        jobs_to_run += 1;
                        legs_to_run += legs.len();
                    }
                    let has_matrix = legs.iter().any(|l| !l.matrix.is_empty());
                    if has_matrix {
                        let _ = writeln!(
                            out,
                            "{detail}{} leg{}:",
                            legs.len(),
                            if legs.len() == 1 { "" } else { "s" }
                        );
                        for leg in legs {
                            let _ = writeln!(out, "{detail}  {}", leg.name);
                        }
                    }
                }
                PlannedMatrix::RunTime { reason } => {
                    if runs_steps {
                        jobs_to_run += 1;
                    }
                    let _ = writeln!(out, "{detail}legs {reason}");
                }
            }
        }
    }
    out.push('\n');
    let workflows = plan.workflows.len();
    let _ = writeln!(
        out,
        "{triggered} of {workflows} workflow{} triggered: {jobs_to_run} job{} ({legs_to_run} known leg{}) to run, {skipped} skipped",
        if workflows == 1 { "" } else { "s" },
        if jobs_to_run == 1 { "" } else { "s" },
        if legs_to_run == 1 { "" } else { "s" },
    );
    out
}

/// How deep each job sits below calling jobs (0 for the workflow's own jobs).
fn job_depths(workflow: &WorkflowPlan) -> HashMap<JobKey, usize> {
    let mut depth: HashMap<JobKey, usize> = HashMap::new();
    for job in &workflow.jobs {
        let d = job
            .parent
            .as_ref()
            .and_then(|p| depth.get(p))
            .map_or(0, |d| d + 1);
        depth.insert(job.key.clone(), d);
    }
    depth
}

/// Colours when enabled, plain text otherwise.
struct Paint {
    color: bool,
}

impl Paint {
    fn bold(&self, s: &str) -> String {
        if self.color {
            s.bold().to_string()
        } else {
            s.to_owned()
        }
    }

    fn dim(&self, s: &str) -> String {
        if self.color {
            s.dimmed().to_string()
        } else {
            s.to_owned()
        }
    }

    fn red(&self, s: &str) -> String {
        if self.color {
            s.red().bold().to_string()
        } else {
            s.to_owned()
        }
    }

    fn green(&self, s: &str) -> String {
        if self.color {
            s.green().to_string()
        } else {
            s.to_owned()
        }
    }

    fn yellow(&self, s: &str) -> String {
        if self.color {
            s.yellow().to_string()
        } else {
            s.to_owned()
        }
    }
}
