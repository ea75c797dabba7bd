//! `gantry run`: runs the repository's workflows on this machine with the runner the agents
//! use, so a local run gives the answer CI would give.

use crate::dotenv::parse_dotenv;
use crate::event::{ChangedSource, EventOptions, build_context, parse_pair};
use crate::exit::CommandError;
use crate::repo::{Repo, print_diagnostics};
use crate::run::driver::{DriverOptions, JobFilter, drive};
use crate::run::printer::{OutputMode, Printer, render_summary};
use crate::run::store::{self, RunStore};
use crate::style;
use anyhow::Context as _;
use clap::Args;
use gantry_protocol::Conclusion;
use gantry_workflow::plan::{PlannedMatrix, plan_run};
use indexmap::IndexMap;
use owo_colors::OwoColorize;
use std::io::Write;
use std::path::PathBuf;

/// Run the repository's workflows locally, exactly as CI will.
///
/// Each job gets a clean copy of the committed tree at HEAD (use --workspace-here to run in
/// the current directory, uncommitted changes included). Jobs run in parallel in needs order;
/// output is live, prefixed by job; a summary follows. Logs and results are kept in
/// .gantry/runs/<n>/ (add `.gantry/runs/` to .gitignore).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry run                              # what a push of the current branch would run
  gantry run --job test --matrix os=linux # one job (and the jobs it needs), one matrix leg
  gantry run --event pull_request --base main
  gantry run --event workflow_dispatch --input level=debug
  gantry run --secret TOKEN=abc --secret-file .secrets --var REGION=eu
  gantry run --list                       # jobs and matrix legs, nothing executed
  gantry run --last                       # the summary of the last run again

Exit status: 0 when every job succeeded, 1 when a job failed, 2 for invalid workflows or
usage, 130 when interrupted (Ctrl-C, SIGTERM, or SIGHUP unless ignored as under nohup).
A first interruption cancels the run as GitHub does (the running steps get SIGINT, then
SIGTERM, then SIGKILL; `if: always()` steps still run); a second one stops at once.")]
pub struct RunArgs {
    /// Workflow files to run (default: every workflow the event triggers).
    #[arg(long = "workflow", short = 'W', value_name = "FILE")]
    pub workflows: Vec<PathBuf>,
    /// Run only this job (and the jobs it needs). Repeatable.
    #[arg(long = "job", short = 'j', value_name = "ID")]
    pub jobs: Vec<String>,
    /// Run only matrix legs with this value (k=v). Repeatable; values of one key are
    /// alternatives.
    #[arg(long = "matrix", value_name = "K=V", value_parser = parse_pair)]
    pub matrix: Vec<(String, String)>,
    /// The event (push, pull_request, workflow_dispatch, ...).
    #[arg(long, short = 'e', default_value = "push")]
    pub event: String,
    /// The ref (a branch name or a full ref). Default: the current branch.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Base branch of a pull_request event.
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The event payload (JSON), as the forge would send it.
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// Changed paths for path filters (default: from git). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub changed: Vec<String>,
    /// A workflow_dispatch input (k=v). Repeatable.
    #[arg(long = "input", value_name = "K=V", value_parser = parse_pair)]
    pub inputs: Vec<(String, String)>,
    /// A secret (NAME=VALUE). Repeatable. Masked in every line shown or stored.
    #[arg(long = "secret", short = 's', value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub secrets: Vec<(String, String)>,
    /// Secrets from a .env-style file.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// The repository as `owner/name` (`github.repository`). Default: from the `origin`
    /// remote.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,
    /// Who triggered the run (`github.actor`). Default: $USER.
    #[arg(long, value_name = "LOGIN")]
    pub actor: Option<String>,
    /// A configuration variable for the `vars` context (NAME=VALUE). Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// An environment variable for every job (NAME=VALUE), under the workflow's own env.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub env: Vec<(String, String)>,
    /// Environment variables for every job from a .env-style file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Jobs running at once (default: the number of CPUs).
    #[arg(long = "jobs-parallel", short = 'p', value_name = "N")]
    pub parallel: Option<usize>,
    /// List workflows, jobs and matrix legs; run nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub list: bool,
    /// Show what would run, in order; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run in the current directory, uncommitted changes included, instead of a clean copy.
    #[arg(long)]
    pub workspace_here: bool,
    /// Keep each job's workspace after the run (they are deleted by default).
    #[arg(long)]
    pub keep_workspace: bool,
    /// Skip steps using actions Gantry cannot run (with a warning) instead of failing.
    #[arg(long)]
    pub skip_unavailable_actions: bool,
    /// Show only failures (and the summary).
    #[arg(long, short = 'q', conflicts_with = "json")]
    pub quiet: bool,
    /// Print one JSON event per line (for tools).
    #[arg(long)]
    pub json: bool,
    /// Show ::debug:: messages (ACTIONS_STEP_DEBUG).
    #[arg(long)]
    pub debug: bool,
    /// Seconds a step gets after SIGINT before SIGTERM when cancelled.
    #[arg(long, value_name = "SECONDS", default_value = "7.5", value_parser = parse_grace)]
    pub interrupt_grace: std::time::Duration,
    /// Seconds a step gets after SIGTERM before SIGKILL when cancelled.
    #[arg(long, value_name = "SECONDS", default_value = "2.5", value_parser = parse_grace)]
    pub terminate_grace: std::time::Duration,
    /// Print the summary of the last run again.
    #[arg(long)]
    pub last: bool,
}

pub fn cmd_run(args: RunArgs) -> Result<(), CommandError> {
    let repo = Repo::current()?;
    if args.last {
        return show_last(&repo);
    }
    let loaded = repo.load_workflows(&[])?;
    let color = style::stderr_color();
    let count = print_diagnostics(&repo, &loaded, color);
    if count.errors > 0 {
        let _ = writeln!(
            anstream::stderr(),
            "{}",
            format!(
                "{} error(s) in the workflow files: nothing was run (see `gantry validate`)",
                count.errors
            )
            .red()
            .bold()
        );
        return Err(CommandError::INVALID);
    }
    let workflows: Vec<_> = loaded
        .iter()
        .filter_map(|l| l.parsed.workflow.clone())
        .collect();

    let mut secrets: IndexMap<String, String> = IndexMap::new();
    if let Some(path) = &args.secret_file {
        for (k, v) in read_dotenv(path)? {
            secrets.insert(k, v);
        }
    }
    for (k, v) in &args.secrets {
        secrets.insert(k.clone(), v.clone());
    }
    let mut extra_env: IndexMap<String, String> = IndexMap::new();
    if let Some(path) = &args.env_file {
        for (k, v) in read_dotenv(path)? {
            extra_env.insert(k, v);
        }
    }
    for (k, v) in &args.env {
        extra_env.insert(k.clone(), v.clone());
    }

    let options = EventOptions {
        name: Some(args.event.clone()),
        git_ref: args.git_ref.clone(),
        base: args.base.clone(),
        payload: args.payload.clone(),
        changed: args.changed.clone(),
        inputs: args.inputs.clone(),
        need_changed: workflows.iter().any(|w| w.on.filters_paths()),
    };
    let (mut ctx, changed_source) = build_context(&repo, &options)?;
    ctx.vars = args.vars.iter().cloned().collect();
    if let Some(actor) = &args.actor {
        ctx.actor = actor.clone();
    }
    if let Some(repository) = &args.repository {
        if !repository.contains('/') {
            return Err(CommandError::Usage(anyhow::anyhow!(
                "--repository {repository}: give it as OWNER/NAME"
            )));
        }
        ctx.repository = repository.clone();
    }
    ctx.secret_names = secrets.keys().cloned().collect();
    let sha_known = repo.head_sha().is_some();

    // Which workflows: the ones given, else all.
    let selected_files: Vec<String> = args
        .workflows
        .iter()
        .map(|p| {
            let absolute = std::env::current_dir()
                .map(|cwd| cwd.join(p))
                .unwrap_or(p.clone());
            repo.display_path(&absolute)
        })
        .collect();
    for file in &selected_files {
        if !workflows.iter().any(|w| &w.file == file) {
            return Err(CommandError::Usage(anyhow::anyhow!(
                "--workflow {file}: no such workflow file (known: {})",
                workflows
                    .iter()
                    .map(|w| w.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }

    let plan = plan_run(&workflows, &ctx);
    let wanted = |file: &str| selected_files.is_empty() || selected_files.iter().any(|f| f == file);
    let chosen: Vec<_> = plan.workflows.iter().filter(|w| wanted(&w.file)).collect();

    // --job must name a job of a chosen workflow.
    for job in &args.jobs {
        let known = chosen.iter().any(|w| {
            w.jobs
                .iter()
                .any(|j| j.job_id == *job || j.key.as_str() == job)
        });
        if !known {
            let ids: Vec<String> = chosen
                .iter()
                .flat_map(|w| w.jobs.iter().map(|j| j.key.as_str().to_owned()))
                .collect();
            return Err(CommandError::Usage(anyhow::anyhow!(
                "--job {job}: no such job (jobs: {})",
                ids.join(", ")
            )));
        }
    }

    check_matrix_filter(&args.matrix, &chosen)?;

    let mut out = anstream::stdout();
    if args.list || args.dry_run {
        print_listing(&mut out, &chosen, args.dry_run);
        return Ok(());
    }

    let runnable: Vec<_> = chosen.iter().filter(|w| w.is_runnable()).copied().collect();
    for workflow in &chosen {
        if workflow.triggered
            && let Some(problem) = workflow.errors.first()
        {
            let _ = writeln!(
                anstream::stderr(),
                "{} {}: {problem}",
                "error:".red().bold(),
                workflow.file
            );
        }
    }
    if chosen.iter().any(|w| w.triggered && !w.errors.is_empty()) {
        return Err(CommandError::INVALID);
    }
    if runnable.is_empty() {
        let _ = writeln!(
            out,
            "No workflow runs for `{}` on {}:",
            ctx.event.name,
            ctx.event.git_ref.as_deref().unwrap_or("?")
        );
        for workflow in &chosen {
            let _ = writeln!(out, "  {}: {}", workflow.file, workflow.reason);
        }
        return Ok(());
    }

    let (number, run_store) = RunStore::create(&repo.root)?;
    ctx.run_number = u64::from(number);
    ctx.run_id = u64::from(number);
    // Plan again with the run number known (it is part of the github context).
    let plan = plan_run(&workflows, &ctx);
    let runnable: Vec<_> = plan
        .workflows
        .iter()
        .filter(|w| wanted(&w.file) && w.is_runnable())
        .cloned()
        .collect();

    let mode = if args.json {
        OutputMode::Json
    } else if args.quiet {
        OutputMode::Quiet
    } else {
        OutputMode::Live
    };
    let mut printer = Printer::stdout(mode, args.debug);
    if !sha_known {
        printer.warn(&format!(
            "{} has no commit yet: jobs run in the working tree itself (as with \
             --workspace-here), uncommitted files included",
            repo.root.display()
        ));
    }
    if args.workspace_here {
        printer.warn(&format!(
            "running in the working tree {} (uncommitted changes included), not in a clean checkout",
            repo.root.display()
        ));
    }
    if let ChangedSource::Git(how) = &changed_source {
        printer.note(&format!("changed paths for path filters: {how}"));
    }

    let parallel = args
        .parallel
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let driver = DriverOptions {
        repo: repo.clone(),
        sha: ctx.sha.clone(),
        git_ref: ctx.event.git_ref.clone(),
        secrets,
        extra_env,
        parallel,
        filter: JobFilter {
            jobs: args.jobs.clone(),
            matrix: args.matrix.clone(),
        },
        workspace_here: args.workspace_here || !sha_known,
        keep_workspace: args.keep_workspace,
        skip_unavailable_actions: args.skip_unavailable_actions,
        step_debug: args.debug,
        interrupt_grace: args.interrupt_grace,
        terminate_grace: args.terminate_grace,
        run_number: number,
        event: ctx.event.name.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let outcome = runtime.block_on(drive(runnable, workflows, driver, printer, run_store));
    let outcome = outcome.map_err(CommandError::Internal)?;
    if outcome.interrupted {
        Err(CommandError::INTERRUPTED)
    } else if outcome.conclusion == Conclusion::Success {
        Ok(())
    } else {
        Err(CommandError::FAILED)
    }
}

/// A grace period in seconds (`0.5`, `10`): finite, not negative, at most an hour.
fn parse_grace(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(format!("`{text}`: give between 0 and 3600 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

fn read_dotenv(path: &PathBuf) -> Result<Vec<(String, String)>, CommandError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    parse_dotenv(&text).map_err(|e| CommandError::Usage(anyhow::anyhow!("{}: {e}", path.display())))
}

fn show_last(repo: &Repo) -> Result<(), CommandError> {
    let summary = store::load_last(&repo.root)?;
    let _ = write!(anstream::stdout(), "{}", render_summary(&summary));
    if summary.interrupted {
        Err(CommandError::INTERRUPTED)
    } else if summary.succeeded() {
        Ok(())
    } else {
        Err(CommandError::FAILED)
    }
}

/// `--matrix k=v` must name a key and a value some planned leg has: a typo would otherwise
/// run nothing (or everything) without a word. Matrices known only at run time are not checked.
fn check_matrix_filter(
    filter: &[(String, String)],
    workflows: &[&gantry_workflow::plan::WorkflowPlan],
) -> Result<(), CommandError> {
    let mut values: IndexMap<&str, Vec<String>> = IndexMap::new();
    for job in workflows.iter().flat_map(|w| &w.jobs) {
        match &job.matrix {
            PlannedMatrix::Legs { legs } => {
                for (key, value) in legs.iter().flat_map(|leg| leg.iter()) {
                    let known = values.entry(key.as_str()).or_default();
                    let text = json_text(value);
                    if !known.contains(&text) {
                        known.push(text);
                    }
                }
            }
            PlannedMatrix::RunTime { .. } => return Ok(()),
        }
    }
    for (key, value) in filter {
        let Some(known) = values.get(key.as_str()) else {
            let keys: Vec<&str> = values.keys().copied().collect();
            return Err(CommandError::Usage(anyhow::anyhow!(
                "--matrix {key}={value}: no matrix has the key `{key}` (keys: {})",
                if keys.is_empty() {
                    "none, no job has a matrix".to_owned()
                } else {
                    keys.join(", ")
                }
            )));
        };
        if !known.contains(value) {
            return Err(CommandError::Usage(anyhow::anyhow!(
                "--matrix {key}={value}: no matrix leg has {key}={value} (values of {key}: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// `--list` and `--dry-run`: workflows, jobs in needs order, matrix legs.
fn print_listing(
    out: &mut impl Write,
    workflows: &[&gantry_workflow::plan::WorkflowPlan],
    dry_run: bool,
) {
    for workflow in workflows {
        if !workflow.triggered {
            let _ = writeln!(
                out,
                "{} {} {}",
                "○".dimmed(),
                workflow.file.dimmed(),
                format!("— not run: {}", workflow.reason).dimmed()
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{} {} ({})",
            "●".green(),
            workflow.name.bold(),
            workflow.file
        );
        for job in &workflow.jobs {
            let needs = if job.needs.is_empty() {
                String::new()
            } else {
                format!(
                    " needs: {}",
                    job.needs
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(
                out,
                "  {} {}{}",
                job.key.as_str().bold(),
                job.name,
                needs.dimmed()
            );
            match &job.matrix {
                PlannedMatrix::Legs { legs } => {
                    for leg in legs.iter().filter(|leg| !leg.is_empty()) {
                        let values: Vec<String> = leg
                            .iter()
                            .map(|(k, v)| format!("{k}={}", json_text(v)))
                            .collect();
                        let _ = writeln!(out, "      {}", values.join(", "));
                    }
                }
                PlannedMatrix::RunTime { reason } => {
                    let _ = writeln!(out, "      {}", format!("matrix: {reason}").dimmed());
                }
            }
            if let Some(error) = &job.error {
                let _ = writeln!(out, "      {}", format!("cannot run: {error}").red());
            }
            if let Some(reason) = &job.skipped_reason {
                let _ = writeln!(out, "      {}", format!("skipped: {reason}").dimmed());
            }
        }
    }
    if dry_run {
        let _ = writeln!(out, "{}", "(dry run: nothing was executed)".dimmed());
    }
}

/// A JSON value as shown in a leg: strings bare, the rest as JSON.
pub fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
