//! [`plan_run`]: an event to the workflows it starts and their jobs, in needs order, with what
//! can be known before anything runs (matrix legs, skip reasons, errors).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use gantry_expr::{Contexts, Value as ExprValue};
use gantry_protocol::Conclusion;
use serde::Serialize;
use serde_json::{Map, Value};

use super::JobKey;
use super::context::RunContext;
use super::evaluation::{
    LEG, StatusView, WORKFLOW, evaluate_condition, evaluate_node, evaluate_string, expression_uses,
    leg_display_name, node_contexts, template_contexts,
};
use super::inputs::{InputSource, type_inputs};
use super::instance::{JobScope, check_call, evaluate_matrix, job_contexts, leg_name, skip_reason};
use super::secrets::SecretScope;
use crate::matrix::Leg;
use crate::model::{Job, Workflow};
use crate::trigger::{TriggerDecision, check_trigger};

/// GitHub's limit on nested reusable workflows: a top-level workflow and at most four levels of
/// called workflows below it.
pub const MAX_CALL_DEPTH: usize = 4;

/// What an event starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// One entry per workflow given to [`plan_run`] (callable-only workflows included, never
    /// triggered), in the order given.
    pub workflows: Vec<WorkflowPlan>,
}

impl Plan {
    /// The workflows the event starts and that can run.
    pub fn runnable(&self) -> impl Iterator<Item = &WorkflowPlan> {
        self.workflows.iter().filter(|w| w.is_runnable())
    }
}

/// One workflow's fate for the event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkflowPlan {
    /// The workflow's file (as given to the parser).
    pub file: String,
    /// `name:`, or the file path.
    pub name: String,
    /// Whether the event starts it.
    pub triggered: bool,
    /// Why it is (or is not) started: "triggered by `push`", "no `on: release` trigger",
    /// "branch push but only tag filters are defined", ...
    pub reason: String,
    /// Problems that stop a triggered workflow from running (bad inputs, an unresolvable needs
    /// graph...). Empty when it can run.
    pub errors: Vec<String>,
    /// `run-name`, evaluated (the workflow name when absent or when it fails to evaluate).
    pub run_name: String,
    /// The `github` context of its jobs.
    pub github: Value,
    /// The `inputs` context: the typed `workflow_dispatch` inputs, or the typed
    /// `workflow_call` inputs for the `workflow_call` event; `{}` otherwise.
    pub inputs: Value,
    /// The `vars` context.
    pub vars: Value,
    /// The run's secret names.
    pub secret_names: Vec<String>,
    /// Jobs in needs order (a job comes after every job it needs; file order otherwise), jobs
    /// of called workflows right after their calling job. Empty when not triggered.
    pub jobs: Vec<PlannedJob>,
}

impl WorkflowPlan {
    /// Triggered and free of errors.
    pub fn is_runnable(&self) -> bool {
        self.triggered && self.errors.is_empty()
    }

    /// The job with this key.
    pub fn job(&self, key: &JobKey) -> Option<&PlannedJob> {
        self.jobs.iter().find(|j| &j.key == key)
    }

    /// Jobs grouped into stages of jobs that can run together (each stage needs only jobs of
    /// earlier stages), top-level jobs only (jobs of called workflows run inside their calling
    /// job's stage).
    pub fn stages(&self) -> Vec<Vec<JobKey>> {
        let top: Vec<&PlannedJob> = self.jobs.iter().filter(|j| j.parent.is_none()).collect();
        let mut stage_of: Vec<(JobKey, usize)> = Vec::new();
        let mut stages: Vec<Vec<JobKey>> = Vec::new();
        for job in top {
            let stage = job
                .needs
                .iter()
                .filter_map(|n| stage_of.iter().find(|(k, _)| k == n).map(|(_, s)| s + 1))
                .max()
                .unwrap_or(0);
            stage_of.push((job.key.clone(), stage));
            if stages.len() <= stage {
                stages.resize(stage + 1, Vec::new());
            }
            stages[stage].push(job.key.clone());
        }
        stages
    }
}

/// One job of a planned workflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedJob {
    /// Unique in the run (`build`, `call/build`).
    pub key: JobKey,
    /// The id in its workflow (`jobs.<id>`).
    pub job_id: String,
    /// The name GitHub shows (`Caller / Called` for jobs of called workflows). Templates in
    /// `name:` are shown as written when they need run-time values.
    pub name: String,
    /// Keys of the jobs it needs.
    pub needs: Vec<JobKey>,
    /// The workflow file the job is written in.
    pub file: String,
    /// For a job of a called workflow: the calling job.
    pub parent: Option<JobKey>,
    pub kind: PlannedJobKind,
    pub matrix: PlannedMatrix,
    /// Why the job will not run, when that is known before the run (`if:` false, a needed job
    /// skipped).
    pub skipped_reason: Option<String>,
    /// Why the job cannot run (a remote reusable workflow, a bad matrix...). It fails at run
    /// time with this message.
    pub error: Option<String>,
}

/// What a job does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PlannedJobKind {
    /// Runs steps.
    Run,
    /// Calls a reusable workflow (`uses:`); its jobs follow it in the plan.
    Call { uses: String },
}

/// A job's matrix legs, when they are known before the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PlannedMatrix {
    /// The legs (one leg with an empty matrix for a job without matrix).
    Legs { legs: Vec<PlannedLeg> },
    /// Expanded at run time; the reason names what the matrix depends on.
    RunTime { reason: String },
}

/// One matrix leg known at planning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedLeg {
    /// The leg's `matrix` context (`{}` without matrix).
    pub matrix: Leg,
    /// Its display name (`test (ubuntu-latest, 18)`).
    pub name: String,
}

/// A planned leg reads as its matrix values (`leg.iter()`, `leg.get("os")`).
impl std::ops::Deref for PlannedLeg {
    type Target = Leg;

    fn deref(&self) -> &Leg {
        &self.matrix
    }
}

/// Plans an event: for each workflow, whether it starts and why, and its jobs.
pub fn plan_run(workflows: &[Workflow], ctx: &RunContext) -> Plan {
    Plan {
        workflows: workflows
            .iter()
            .map(|w| plan_workflow(w, workflows, ctx))
            .collect(),
    }
}

fn plan_workflow(workflow: &Workflow, workflows: &[Workflow], ctx: &RunContext) -> WorkflowPlan {
    let name = workflow.display_name().to_owned();
    let mut plan = WorkflowPlan {
        file: workflow.file.clone(),
        name: name.clone(),
        triggered: false,
        reason: String::new(),
        errors: Vec::new(),
        run_name: name.clone(),
        github: Value::Null,
        inputs: Value::Object(Map::new()),
        vars: ctx.vars_json(),
        secret_names: ctx.secret_names.clone(),
        jobs: Vec::new(),
    };
    // `workflow_call` is no GitHub event: naming it runs a reusable workflow directly, as if a
    // caller called it with the given inputs and `secrets: inherit` (how `gantry run` and act
    // try a reusable workflow locally).
    let called_directly = ctx.event.name == "workflow_call";
    if called_directly {
        plan.triggered = workflow.on.workflow_call.is_some();
        plan.reason = if plan.triggered {
            "triggered by `workflow_call`: runs as if another workflow called it".to_owned()
        } else {
            "no `on: workflow_call` trigger: the workflow cannot be called".to_owned()
        };
    } else {
        let callable_only = workflow.on.workflow_call.is_some()
            && workflow
                .on
                .triggers
                .iter()
                .all(|t| t.event.value == "workflow_call");
        if callable_only {
            plan.reason =
                "runs only when another workflow calls it (`on: workflow_call`)".to_owned();
            return plan;
        }
        let decision = check_trigger(&workflow.on.triggers, &ctx.event);
        plan.triggered = decision.runs();
        plan.reason = match decision {
            TriggerDecision::Runs => format!("triggered by `{}`", ctx.event.name),
            TriggerDecision::RunsAssuming(why) => {
                format!("triggered by `{}` ({why})", ctx.event.name)
            }
            TriggerDecision::Skipped(reason) => reason.message,
        };
    }
    if !plan.triggered {
        return plan;
    }

    // Inputs.
    let given: Vec<(String, Value)> = ctx
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut inputs = Map::new();
    if ctx.event.name == "workflow_dispatch" {
        let declared = workflow
            .on
            .workflow_dispatch
            .as_ref()
            .map(|d| d.inputs.as_slice())
            .unwrap_or_default();
        match type_inputs(declared, &given, InputSource::Dispatch, None) {
            Ok(typed) => inputs = typed,
            Err(errors) => plan.errors.extend(errors.iter().map(ToString::to_string)),
        }
    } else if called_directly {
        let declared = workflow
            .on
            .workflow_call
            .as_ref()
            .map(|c| c.inputs.as_slice())
            .unwrap_or_default();
        let mut defaults_ctx = Contexts::new();
        defaults_ctx.insert(
            "github",
            ExprValue::from(ctx.github_context(&workflow.file, &name)),
        );
        defaults_ctx.insert("vars", ExprValue::from(&plan.vars));
        defaults_ctx.insert(
            "inputs",
            ExprValue::from(Value::Object(given.iter().cloned().collect())),
        );
        match type_inputs(
            declared,
            &given,
            InputSource::CallEvent,
            Some(&defaults_ctx),
        ) {
            Ok(typed) => inputs = typed,
            Err(errors) => plan.errors.extend(errors.iter().map(ToString::to_string)),
        }
    }
    plan.inputs = Value::Object(inputs.clone());

    // The github context.
    let mut github = ctx.github_context(&workflow.file, &name);
    // `github.event.inputs` holds every input as a string, defaults included; a payload's own
    // values are kept.
    if ctx.event.name == "workflow_dispatch"
        && let Some(event) = github.get_mut("event").and_then(Value::as_object_mut)
    {
        let entry = event
            .entry("inputs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(given) = entry {
            for (name, value) in &inputs {
                if !given.contains_key(name) {
                    given.insert(
                        name.clone(),
                        Value::String(super::evaluation::display_value(value)),
                    );
                }
            }
        }
    }
    plan.github = github;

    // run-name.
    let mut contexts = Contexts::new();
    contexts.insert("github", ExprValue::from(&plan.github));
    contexts.insert("inputs", ExprValue::from(&plan.inputs));
    contexts.insert("vars", ExprValue::from(&plan.vars));
    plan.run_name = match &workflow.run_name {
        Some(template) => {
            evaluate_string(&template.value, WORKFLOW, &contexts).unwrap_or_else(|_| name.clone())
        }
        None => default_run_name(&plan.github).unwrap_or_else(|| name.clone()),
    };

    if let Err(e) = needs_order(workflow) {
        plan.errors
            .push(format!("unable to build the needs graph: {e}"));
        return plan;
    }
    let scope = JobScope {
        github: plan.github.clone(),
        inputs: plan.inputs.clone(),
        vars: plan.vars.clone(),
        secret_names: plan.secret_names.clone(),
        secrets: SecretScope::all(),
        key_prefix: None,
        name_prefix: None,
        depth: 0,
    };
    let mut planner = Planner {
        workflows,
        jobs: Vec::new(),
        statuses: HashMap::new(),
    };
    planner.plan_jobs(workflow, &scope, true, None, None);
    plan.jobs = planner.jobs;
    plan
}

/// GitHub's default run name: the head commit's message for pushes, the pull request's title
/// for pull requests.
fn default_run_name(github: &Value) -> Option<String> {
    let event = github.get("event")?;
    let text = event
        .pointer("/head_commit/message")
        .or_else(|| event.pointer("/pull_request/title"))
        .and_then(Value::as_str)?;
    let first = text.lines().next().unwrap_or_default().trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// The jobs of `workflow` in needs order: a job after every job it needs, file order
/// otherwise. An unknown need or a cycle is an error.
pub(crate) fn needs_order(workflow: &Workflow) -> Result<Vec<usize>, String> {
    let ids: HashMap<&str, usize> = workflow
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.value.as_str(), i))
        .collect();
    let n = workflow.jobs.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut problems = Vec::new();
    for (i, job) in workflow.jobs.iter().enumerate() {
        for need in &job.needs {
            match ids.get(need.value.as_str()) {
                Some(&j) => {
                    waiting_on[i] += 1;
                    dependents[j].push(i);
                }
                None => problems.push(format!(
                    "job `{}` needs `{}`, which is not a job of this workflow",
                    job.id.value, need.value
                )),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n)
        .filter(|&i| waiting_on[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() < n {
        let stuck: Vec<String> = (0..n)
            .filter(|&i| waiting_on[i] > 0)
            .map(|i| format!("`{}`", workflow.jobs[i].id.value))
            .collect();
        return Err(format!(
            "the needs of jobs {} form a cycle",
            stuck.join(", ")
        ));
    }
    Ok(order)
}

/// What planning knows of a job's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StaticResult {
    /// Will be skipped.
    Skipped,
    /// Will fail (an error known at planning).
    Failed,
    /// Depends on the run.
    Unknown,
}

struct Planner<'w> {
    workflows: &'w [Workflow],
    jobs: Vec<PlannedJob>,
    /// Each planned job's result as known now, and the kinds of results above it.
    statuses: HashMap<JobKey, (StaticResult, Vec<StaticResult>)>,
}

impl Planner<'_> {
    /// Plans the jobs of `workflow` in `scope`. `inputs_known`: whether `scope.inputs` holds
    /// the real inputs (not when a caller's `with:` needs run-time values). `skipped_by`: the
    /// calling job when it is skipped.
    fn plan_jobs(
        &mut self,
        workflow: &Workflow,
        scope: &JobScope,
        inputs_known: bool,
        parent: Option<&JobKey>,
        skipped_by: Option<&JobKey>,
    ) {
        let Ok(order) = needs_order(workflow) else {
            return;
        };
        let mut known = vec!["github", "vars"];
        if inputs_known {
            known.push("inputs");
        }
        for index in order {
            let job = &workflow.jobs[index];
            let key = scope.key(&job.id.value);
            let needs: Vec<JobKey> = job.needs.iter().map(|n| scope.key(&n.value)).collect();
            let base = job_contexts(scope, &Value::Object(Map::new()));
            let mut planned = PlannedJob {
                key: key.clone(),
                job_id: job.id.value.clone(),
                name: scope.name(&static_name(job, &base, &known)),
                needs: needs.clone(),
                file: workflow.file.clone(),
                parent: parent.cloned(),
                kind: match &job.call {
                    Some(call) => PlannedJobKind::Call {
                        uses: call.uses.value.clone(),
                    },
                    None => PlannedJobKind::Run,
                },
                matrix: PlannedMatrix::Legs { legs: Vec::new() },
                skipped_reason: None,
                error: None,
            };
            planned.skipped_reason = match skipped_by {
                Some(caller) => Some(format!("the calling job `{caller}` is skipped")),
                None => self.static_skip(job, &needs, &base, &known),
            };
            let (matrix, matrix_error) = plan_matrix(job, &base, &known);
            planned.matrix = matrix;
            planned.error = matrix_error;
            if let PlannedMatrix::Legs { legs } = &planned.matrix
                && legs.is_empty()
                && planned.error.is_none()
                && planned.skipped_reason.is_none()
            {
                planned.skipped_reason =
                    Some("the matrix has no legs (every combination is excluded)".to_owned());
            }
            let mut called = None;
            if let Some(call) = &job.call {
                match check_call(call, scope.depth, self.workflows) {
                    Ok(w) => match needs_order(w) {
                        Ok(_) => called = Some(w),
                        Err(e) => {
                            planned.error = Some(format!(
                                "`{}`: unable to build the needs graph: {e}",
                                call.uses.value
                            ));
                        }
                    },
                    Err(e) => planned.error = Some(e),
                }
            }
            let result = if planned.skipped_reason.is_some() {
                StaticResult::Skipped
            } else if planned.error.is_some() {
                StaticResult::Failed
            } else {
                StaticResult::Unknown
            };
            let mut kinds: Vec<StaticResult> = Vec::new();
            for need in &needs {
                if let Some((r, above)) = self.statuses.get(need) {
                    for kind in std::iter::once(r).chain(above) {
                        if !kinds.contains(kind) {
                            kinds.push(*kind);
                        }
                    }
                }
            }
            self.statuses.insert(key.clone(), (result, kinds));
            let skipped = planned.skipped_reason.is_some();
            let legs_for_call = match &planned.matrix {
                PlannedMatrix::Legs { legs } => Some(legs.clone()),
                PlannedMatrix::RunTime { .. } => None,
            };
            self.jobs.push(planned);
            let (Some(call), Some(called)) = (&job.call, called) else {
                continue;
            };
            let skipped_by = if skipped { Some(&key) } else { skipped_by };
            let call_legs: Vec<Option<Leg>> = match (&job.strategy, legs_for_call) {
                (Some(s), Some(legs)) if s.matrix.is_some() => {
                    legs.into_iter().map(|l| Some(l.matrix)).collect()
                }
                _ => vec![None],
            };
            let total = call_legs.len();
            for (leg_index, leg) in call_legs.iter().enumerate() {
                let mut ctx = base.clone();
                insert_leg(&mut ctx, leg.as_ref(), leg_index, total);
                let leg_name = leg_name(job, leg.as_ref(), &ctx).unwrap_or_else(|_| {
                    leg_display_name(job.display_name(), &leg.clone().unwrap_or_default())
                });
                let prefix = match leg {
                    Some(values) => JobKey::new(leg_display_name(key.as_str(), values)),
                    None => key.clone(),
                };
                // Inputs, when the `with:` values are known now.
                let mut leg_known = known.clone();
                leg_known.extend(["matrix", "strategy"]);
                let uses_only_known = call.with.iter().all(|(_, v)| {
                    node_contexts(&v.value)
                        .iter()
                        .all(|c| leg_known.contains(&c.as_str()))
                });
                let mut inputs = Value::Object(Map::new());
                let mut inner_inputs_known = false;
                if uses_only_known {
                    let given: Result<Vec<(String, Value)>, String> = call
                        .with
                        .iter()
                        .map(|(k, v)| {
                            evaluate_node(&v.value, LEG, &ctx).map(|v| (k.value.clone(), v))
                        })
                        .collect();
                    if let Ok(given) = given {
                        let declared = called
                            .on
                            .workflow_call
                            .as_ref()
                            .map(|c| c.inputs.as_slice())
                            .unwrap_or_default();
                        let mut defaults_ctx = Contexts::new();
                        defaults_ctx.insert("github", ExprValue::from(&scope.github));
                        defaults_ctx.insert("vars", ExprValue::from(&scope.vars));
                        match type_inputs(declared, &given, InputSource::Call, Some(&defaults_ctx))
                        {
                            Ok(typed) => {
                                inputs = Value::Object(typed);
                                inner_inputs_known = true;
                            }
                            Err(errors) => {
                                let text: Vec<String> =
                                    errors.iter().map(ToString::to_string).collect();
                                if let Some(call_job) = self.jobs.iter_mut().find(|j| j.key == key)
                                    && call_job.error.is_none()
                                {
                                    call_job.error = Some(format!("with: {}", text.join("; ")));
                                }
                            }
                        }
                    }
                }
                let inner = JobScope {
                    github: scope.github.clone(),
                    inputs,
                    vars: scope.vars.clone(),
                    secret_names: scope.secret_names.clone(),
                    secrets: scope.secrets.clone(),
                    key_prefix: Some(prefix),
                    name_prefix: Some(scope.name(&leg_name)),
                    depth: scope.depth + 1,
                };
                self.plan_jobs(called, &inner, inner_inputs_known, Some(&key), skipped_by);
            }
        }
    }

    /// The reason a job is skipped whatever happens at run time, if there is one.
    fn static_skip(
        &self,
        job: &Job,
        needs: &[JobKey],
        base: &Contexts,
        known: &[&str],
    ) -> Option<String> {
        let (contexts, _) = expression_uses(&job.condition.expression);
        if !contexts.iter().all(|c| known.contains(&c.as_str())) {
            return None;
        }
        // The kinds of results above the job (known now, or unknown and tried both ways).
        let mut above: Vec<StaticResult> = Vec::new();
        for key in needs {
            if let Some((result, kinds)) = self.statuses.get(key) {
                for kind in std::iter::once(result).chain(kinds) {
                    if !above.contains(kind) {
                        above.push(*kind);
                    }
                }
            }
        }
        let ancestors = above;
        let mut direct: Vec<(String, StaticResult)> = Vec::new();
        for (need, key) in job.needs.iter().zip(needs) {
            let result = self
                .statuses
                .get(key)
                .map_or(StaticResult::Unknown, |(r, _)| *r);
            direct.push((need.value.clone(), result));
        }
        let view = |unknown: Conclusion| StatusView {
            cancelled: false,
            ancestors: ancestors.iter().map(|r| resolve(*r, unknown)).collect(),
            needs: direct
                .iter()
                .map(|(id, r)| (id.clone(), resolve(*r, unknown)))
                .collect(),
        };
        for unknown in [Conclusion::Success, Conclusion::Failure] {
            let mut ctx = base.clone();
            view(unknown).install(&mut ctx);
            match evaluate_condition(&job.condition.expression, &ctx) {
                Ok(false) => {}
                _ => return None,
            }
        }
        Some(skip_reason(job, &view(Conclusion::Success)))
    }
}

fn resolve(result: StaticResult, unknown: Conclusion) -> Conclusion {
    match result {
        StaticResult::Skipped => Conclusion::Skipped,
        StaticResult::Failed => Conclusion::Failure,
        StaticResult::Unknown => unknown,
    }
}

/// `matrix` and `strategy` of leg `index` of `total` in `ctx`.
fn insert_leg(ctx: &mut Contexts, leg: Option<&Leg>, index: usize, total: usize) {
    let matrix = leg.map_or(Value::Object(Map::new()), |l| Value::Object(l.clone()));
    ctx.insert("matrix", ExprValue::from(matrix));
    let mut strategy = gantry_expr::Object::new();
    strategy.insert("fail-fast", ExprValue::Bool(true));
    strategy.insert("job-index", ExprValue::Number(index as f64));
    strategy.insert("job-total", ExprValue::Number(total as f64));
    strategy.insert("max-parallel", ExprValue::Number(total as f64));
    ctx.insert("strategy", ExprValue::Object(strategy));
}

/// The job's name as far as planning can tell: `name:` evaluated when it only uses what is
/// known, as written otherwise, or the id.
fn static_name(job: &Job, ctx: &Contexts, known: &[&str]) -> String {
    match &job.name {
        Some(name) if !name.value.is_empty() => {
            let uses = template_contexts(&name.value);
            if uses.iter().all(|c| known.contains(&c.as_str())) {
                evaluate_string(&name.value, LEG, ctx).unwrap_or_else(|_| name.value.clone())
            } else {
                name.value.clone()
            }
        }
        _ => job.id.value.clone(),
    }
}

/// The legs of a job known now, or why they are not; and a matrix error found now.
fn plan_matrix(job: &Job, base: &Contexts, known: &[&str]) -> (PlannedMatrix, Option<String>) {
    let matrix = job.strategy.as_ref().and_then(|s| s.matrix.as_ref());
    let Some(matrix) = matrix else {
        let mut ctx = base.clone();
        insert_leg(&mut ctx, None, 0, 1);
        let name = leg_name(job, None, &ctx).unwrap_or_else(|_| job.display_name().to_owned());
        return (
            PlannedMatrix::Legs {
                legs: vec![PlannedLeg {
                    matrix: Leg::new(),
                    name,
                }],
            },
            None,
        );
    };
    let unknown: Vec<String> = node_contexts(&matrix.raw.value)
        .into_iter()
        .filter(|c| !known.contains(&c.as_str()))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|c| format!("`{c}`")).collect();
        return (
            PlannedMatrix::RunTime {
                reason: format!(
                    "expanded at run time because the matrix uses {}",
                    list.join(" and ")
                ),
            },
            None,
        );
    }
    match evaluate_matrix(&matrix.raw.value, base) {
        Ok(legs) => {
            let total = legs.len();
            let legs = legs
                .into_iter()
                .enumerate()
                .map(|(i, leg)| {
                    let mut ctx = base.clone();
                    insert_leg(&mut ctx, Some(&leg), i, total);
                    let name = leg_name(job, Some(&leg), &ctx)
                        .unwrap_or_else(|_| leg_display_name(job.display_name(), &leg));
                    PlannedLeg { matrix: leg, name }
                })
                .collect();
            (PlannedMatrix::Legs { legs }, None)
        }
        Err(e) => (PlannedMatrix::Legs { legs: Vec::new() }, Some(e)),
    }
}
