//! A run's graph as the server keeps it: the run's `RunContext` and workflow sources, plus a
//! journal of graph inputs (`runs.graph`). The graph itself is never stored: it is a pure
//! function of plan and journal, so it is rebuilt by re-planning and replaying
//! (`RunGraph::replay`), after a restart as in normal operation.
//!
//! This module also turns the graph's actions into store changes: legs to queue, legs to
//! cancel, and notes for jobs that ended without running (skipped, failed to start).

use crate::config::ServerConfig;
use crate::store::{JobStatus, NewJob, Run, RunId};
use gantry_expr::{Contexts, Template, Value};
use gantry_protocol::{Conclusion, JobSpec};
use gantry_workflow::model::Workflow;
use gantry_workflow::parse_workflow;
use gantry_workflow::plan::{
    Action, GraphInput, LegStart, RunContext, RunGraph, WorkflowPlan, plan_run,
};
use serde::{Deserialize, Serialize};

/// What `runs.graph` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphDoc {
    /// Every input the graph received, in order.
    pub journal: Vec<GraphInput>,
    /// Jobs that ended without a leg running (skipped, could not start), and job results.
    #[serde(default)]
    pub notes: Vec<JobNote>,
}

/// A job-level fact for the UI and API: a job skipped or failed before running, or finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobNote {
    pub key: String,
    pub name: String,
    pub conclusion: Conclusion,
    pub reason: Option<String>,
}

/// The workflow files of a run, as stored in `runs.sources`.
pub type Sources = Vec<(String, String)>;

/// Parses stored workflow sources. Files with errors are left out (their runs were never
/// created).
pub fn parse_sources(sources: &Sources) -> Vec<Workflow> {
    sources
        .iter()
        .filter_map(|(file, text)| {
            let parsed = parse_workflow(file, text);
            if parsed.has_errors() {
                None
            } else {
                parsed.workflow
            }
        })
        .collect()
}

/// A run's graph rebuilt from the store.
pub struct LoadedRun {
    pub graph: RunGraph,
    pub doc: GraphDoc,
    pub workflows: Vec<Workflow>,
    pub context: RunContext,
}

/// The graphs of active runs as the scheduler left them, so the next step of a run does not
/// re-plan and replay it from the store: each is valid for one `graph_version` only, and one
/// taken out is the taker's (a step that fails simply does not put it back).
#[derive(Default)]
pub struct GraphCache(std::sync::Mutex<std::collections::HashMap<RunId, (i64, LoadedRun)>>);

/// More active runs than this and the cache starts again: it only saves work.
const GRAPH_CACHE_RUNS: usize = 512;

impl GraphCache {
    /// The run's graph at `version`, if it is here.
    pub fn take(&self, run_id: &RunId, version: i64) -> Option<LoadedRun> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(run_id) {
            Some((cached, loaded)) if cached == version => Some(loaded),
            _ => None,
        }
    }

    /// Keeps the run's graph as it is at `version`.
    pub fn put(&self, run_id: &RunId, version: i64, loaded: LoadedRun) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= GRAPH_CACHE_RUNS {
            map.clear();
        }
        map.insert(run_id.clone(), (version, loaded));
    }
}

/// Rebuilds a run's graph: plan again with the stored context and sources, then replay the
/// journal. The actions pending after the last input were performed when it was recorded, so
/// they are taken out here.
pub fn load(run: &Run) -> Result<LoadedRun, String> {
    let context: RunContext = serde_json::from_str(&run.context)
        .map_err(|e| format!("run {}: stored context is unreadable: {e}", run.id))?;
    let sources: Sources = serde_json::from_str(&run.sources)
        .map_err(|e| format!("run {}: stored sources are unreadable: {e}", run.id))?;
    let doc: GraphDoc = if run.graph.trim().is_empty() {
        GraphDoc::default()
    } else {
        serde_json::from_str(&run.graph)
            .map_err(|e| format!("run {}: stored graph is unreadable: {e}", run.id))?
    };
    let workflows = parse_sources(&sources);
    let plan = find_plan(&workflows, &context, &run.workflow_file)?;
    let mut graph = RunGraph::replay(&plan, &workflows, &doc.journal)
        .map_err(|e| format!("run {}: {e}", run.id))?;
    graph.next_actions();
    Ok(LoadedRun {
        graph,
        doc,
        workflows,
        context,
    })
}

/// The plan of `file` for `context`.
pub fn find_plan(
    workflows: &[Workflow],
    context: &RunContext,
    file: &str,
) -> Result<WorkflowPlan, String> {
    plan_run(workflows, context)
        .workflows
        .into_iter()
        .find(|w| w.file == file)
        .ok_or_else(|| format!("workflow {file} is not among the run's workflow files"))
}

/// What a round of graph actions means for the store.
#[derive(Debug, Default)]
pub struct Effects {
    pub new_jobs: Vec<NewJob>,
    /// (key, leg) of legs to cancel.
    pub cancel: Vec<(String, u32)>,
    pub notes: Vec<JobNote>,
}

/// Turns graph actions into store changes.
pub fn effects(actions: Vec<Action>, config: &ServerConfig, workflows: &[Workflow]) -> Effects {
    let mut out = Effects::default();
    for action in actions {
        match action {
            Action::StartLeg(start) => out.new_jobs.push(new_job(&start, config, workflows)),
            Action::CancelLeg { key, leg, .. } => {
                out.cancel.push((
                    key.as_str().to_owned(),
                    u32::try_from(leg).unwrap_or(u32::MAX),
                ));
            }
            Action::JobSkipped { key, name, reason } => out.notes.push(JobNote {
                key: key.as_str().to_owned(),
                name,
                conclusion: Conclusion::Skipped,
                reason: Some(reason),
            }),
            Action::JobFailed { key, name, reason } => out.notes.push(JobNote {
                key: key.as_str().to_owned(),
                name,
                conclusion: Conclusion::Failure,
                reason: Some(reason),
            }),
            Action::JobFinished {
                key,
                name,
                conclusion,
            } => out.notes.push(JobNote {
                key: key.as_str().to_owned(),
                name,
                conclusion,
                reason: None,
            }),
        }
    }
    out
}

/// The queued job for a leg the graph starts.
fn new_job(start: &LegStart, config: &ServerConfig, workflows: &[Workflow]) -> NewJob {
    let spec = &start.spec;
    let timeout_minutes = if spec.timeout_minutes.is_finite() && spec.timeout_minutes > 0.0 {
        spec.timeout_minutes
    } else {
        config.default_job_timeout.as_secs_f64() / 60.0
    };
    // The agent enforces the timeout; the server's backstop leaves it time to report.
    let timeout_ms = (timeout_minutes * 60_000.0) as i64 + 5 * 60_000;
    NewJob {
        key: start.key.as_str().to_owned(),
        leg: u32::try_from(start.leg).unwrap_or(u32::MAX),
        attempt: 1,
        name: spec.name.clone(),
        spec: serde_json::to_string(spec).unwrap_or_else(|_| "{}".to_owned()),
        secret_scope: serde_json::to_string(&start.secrets).unwrap_or_else(|_| "{}".to_owned()),
        labels: config.required_labels(&spec.runs_on),
        status: JobStatus::Queued,
        concurrency_group: job_concurrency_group(spec, workflows),
        timeout_ms: Some(timeout_ms),
    }
}

/// `jobs.<id>.concurrency.group` of a leg, evaluated with the job's contexts.
fn job_concurrency_group(spec: &JobSpec, workflows: &[Workflow]) -> Option<String> {
    let workflow = workflows.iter().find(|w| w.file == spec.workflow.file)?;
    let job = workflow.job(&spec.job_id)?;
    let group = &job.concurrency.as_ref()?.group.value;
    let mut ctx = Contexts::new();
    ctx.insert("github", Value::from(spec.github.clone()));
    ctx.insert("inputs", Value::from(spec.inputs.clone()));
    ctx.insert("vars", Value::from(spec.vars.clone()));
    ctx.insert("needs", Value::from(spec.needs.clone()));
    ctx.insert("matrix", Value::from(spec.matrix.clone()));
    let evaluated = Template::parse(group)
        .and_then(|t| t.evaluate_to_string(&ctx))
        .unwrap_or_else(|_| group.clone());
    let evaluated = evaluated.trim().to_owned();
    (!evaluated.is_empty()).then_some(evaluated)
}

/// Workflow-level `concurrency:` of a run: the group and whether to cancel runs in progress.
pub fn workflow_concurrency(plan: &WorkflowPlan, workflow: &Workflow) -> Option<(String, bool)> {
    let concurrency = workflow.concurrency.as_ref()?;
    let mut ctx = Contexts::new();
    ctx.insert("github", Value::from(plan.github.clone()));
    ctx.insert("inputs", Value::from(plan.inputs.clone()));
    ctx.insert("vars", Value::from(plan.vars.clone()));
    let group = Template::parse(&concurrency.group.value)
        .and_then(|t| t.evaluate_to_string(&ctx))
        .ok()?
        .trim()
        .to_owned();
    if group.is_empty() {
        return None;
    }
    let cancel = concurrency
        .cancel_in_progress
        .as_ref()
        .and_then(|d| {
            let text = gantry_workflow::spec::dynamic_text(d);
            Template::parse(&text)
                .and_then(|t| t.evaluate_to_string(&ctx))
                .ok()
        })
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Some((group, cancel))
}
