//! What a job becomes when the run reaches it: its `if:` decided, its matrix expanded and each
//! leg turned into a [`JobSpec`], or, for a reusable-workflow call, the inputs and secrets of
//! each call leg. Shared by [`super::RunGraph`] (with the needs' real results) and the planner
//! (with what is known before the run).

use gantry_expr::{Contexts, Value};
use gantry_protocol::{
    Conclusion, ContainerSpec, JobSpec, RunDefaults, StrategyContext, WorkflowRef,
};
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};

use super::JobKey;
use super::evaluation::{
    self, LEG, STRATEGY, StatusView, evaluate_condition, evaluate_node, evaluate_string,
    leg_display_name, template_contexts,
};
use super::inputs::{InputSource, type_inputs};
use super::planner::MAX_CALL_DEPTH;
use super::secrets::SecretScope;
use crate::matrix::{self, DEFAULT_MAX_LEGS, Leg};
use crate::model::{CallSecrets, Defaults, Dynamic, Job, ReusableCall, StringMap, Workflow};
use crate::spec::{step_spec, string_map};
use crate::validate::expression::calls_status_function;
use crate::yaml::Node;

/// A job evaluated at the moment its needs are finished.
#[derive(Clone, Debug, PartialEq)]
pub enum JobInstance {
    /// Run these legs (one for a job without matrix), at most `max_parallel` at once; with
    /// `fail_fast`, a failing leg cancels the others.
    Run {
        legs: Vec<JobSpec>,
        fail_fast: bool,
        max_parallel: usize,
        /// The secrets the legs may read.
        secrets: SecretScope,
    },
    /// A reusable-workflow call: one leg per matrix leg of the calling job, each running a copy
    /// of the called workflow's jobs.
    Call {
        legs: Vec<CallLeg>,
        fail_fast: bool,
        max_parallel: usize,
    },
    /// The job does not run (its `if:` is false, a needed job failed or was skipped...).
    Skipped { reason: String },
    /// The job cannot run: a bad expression (the message names the field), a bad matrix, a
    /// workflow that cannot be called...
    Failed { reason: String },
}

/// One leg of a reusable-workflow call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallLeg {
    /// The prefix of the called jobs' keys: `call`, or `call (linux)` for a matrix leg.
    pub prefix: JobKey,
    /// The display name of the calling leg (`call`, `call (linux)`, `outer / call` when nested),
    /// prefixed to the called jobs' names.
    pub name: String,
    /// The calling leg's matrix values (`null` without matrix).
    pub matrix: Json,
    /// The called workflow's `inputs` context.
    pub inputs: Map<String, Json>,
    /// The secrets the called jobs may read.
    pub secrets: SecretScope,
    /// The called workflow's file.
    pub workflow: String,
}

/// What the workflow run around a job provides: the planned workflow's, or a call leg's.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JobScope {
    pub github: Json,
    pub inputs: Json,
    pub vars: Json,
    /// The run's secret names.
    pub secret_names: Vec<String>,
    pub secrets: SecretScope,
    /// The calling leg's key (`call`, `call (a)`), for jobs of a called workflow.
    pub key_prefix: Option<JobKey>,
    /// The calling leg's display name.
    pub name_prefix: Option<String>,
    /// 0 for the planned workflow, 1 for a workflow it calls, ...
    pub depth: usize,
}

impl JobScope {
    /// The key of job `id` in this scope.
    pub fn key(&self, id: &str) -> JobKey {
        match &self.key_prefix {
            Some(prefix) => prefix.child(id),
            None => JobKey::new(id),
        }
    }

    /// The display name of a job named `name` in this scope.
    pub fn name(&self, name: &str) -> String {
        match &self.name_prefix {
            Some(prefix) => format!("{prefix} / {name}"),
            None => name.to_owned(),
        }
    }

    /// The scope of the jobs a call leg runs.
    pub fn for_call_leg(&self, leg: &CallLeg) -> JobScope {
        JobScope {
            github: self.github.clone(),
            inputs: Json::Object(leg.inputs.clone()),
            vars: self.vars.clone(),
            secret_names: self.secret_names.clone(),
            secrets: leg.secrets.clone(),
            key_prefix: Some(leg.prefix.clone()),
            name_prefix: Some(leg.name.clone()),
            depth: self.depth + 1,
        }
    }
}

/// Everything needed to instantiate one job.
pub(crate) struct JobRequest<'a> {
    pub workflow: &'a Workflow,
    pub job: &'a Job,
    pub key: &'a JobKey,
    pub scope: &'a JobScope,
    /// The `needs` context (`{id: {result, outputs}}`).
    pub needs: Json,
    pub status: StatusView,
}

/// The contexts of a job-level field before the matrix is known.
pub(crate) fn job_contexts(scope: &JobScope, needs: &Json) -> Contexts {
    let mut ctx = Contexts::new();
    ctx.insert("github", Value::from(&scope.github));
    ctx.insert("inputs", Value::from(&scope.inputs));
    ctx.insert("vars", Value::from(&scope.vars));
    ctx.insert("needs", Value::from(needs));
    ctx
}

/// Decides the job's `if:`; `Ok(None)` when it runs, `Ok(Some(reason))` when skipped.
pub(crate) fn decide_condition(req: &JobRequest<'_>) -> Result<Option<String>, String> {
    let mut ctx = job_contexts(req.scope, &req.needs);
    req.status.install(&mut ctx);
    let runs = evaluate_condition(&req.job.condition.expression, &ctx)
        .map_err(|e| format!("`if:` could not be evaluated: {e}"))?;
    if runs {
        return Ok(None);
    }
    Ok(Some(skip_reason(req.job, &req.status)))
}

/// Why a job whose `if:` is false is skipped, in words. When the condition has no status
/// function (so GitHub added `success() &&`) and a job above did not succeed, that is the
/// reason given.
pub(crate) fn skip_reason(job: &Job, status: &StatusView) -> String {
    let raw = job.condition.raw.as_ref().map(|r| r.value.as_str());
    let implicit_success = raw.is_none_or(|r| !calls_status_function(r));
    if implicit_success && !status.success() {
        if status.cancelled {
            return "the run was cancelled".to_owned();
        }
        if let Some((id, result)) = status.needs.iter().find(|(_, c)| *c != Conclusion::Success) {
            let what = match result {
                Conclusion::Failure => "failed",
                Conclusion::Cancelled => "was cancelled",
                _ => "was skipped",
            };
            return format!("needed job `{id}` {what}");
        }
        return "a job above it in the needs graph did not succeed".to_owned();
    }
    let raw = raw.unwrap_or("success()");
    if status.cancelled {
        format!("the run was cancelled and `if: {raw}` is false")
    } else {
        format!("`if: {raw}` is false")
    }
}

/// The evaluated strategy: legs (`None` without matrix), fail-fast, max-parallel.
pub(crate) struct StrategyValues {
    pub legs: Option<Vec<Leg>>,
    pub fail_fast: bool,
    pub max_parallel: Option<usize>,
}

pub(crate) fn evaluate_strategy(job: &Job, ctx: &Contexts) -> Result<StrategyValues, String> {
    let Some(strategy) = &job.strategy else {
        return Ok(StrategyValues {
            legs: None,
            fail_fast: true,
            max_parallel: None,
        });
    };
    let legs = match &strategy.matrix {
        Some(matrix) => Some(evaluate_matrix(&matrix.raw.value, ctx)?),
        None => None,
    };
    let fail_fast = match &strategy.fail_fast {
        Some(d) => {
            evaluate_bool(d, STRATEGY, ctx).map_err(|e| format!("strategy.fail-fast: {e}"))?
        }
        None => true,
    };
    let max_parallel = match &strategy.max_parallel {
        Some(d) => {
            let n = evaluate_number(d, STRATEGY, ctx)
                .map_err(|e| format!("strategy.max-parallel: {e}"))?;
            if n.is_nan() || n < 1.0 {
                return Err(format!(
                    "strategy.max-parallel: must be at least 1, got {}",
                    crate::yaml::format_number(n)
                ));
            }
            // `n` is at least 1 and finite here; larger values than legs are harmless.
            Some(n.min(1e9) as usize)
        }
        None => None,
    };
    Ok(StrategyValues {
        legs,
        fail_fast,
        max_parallel,
    })
}

/// Evaluates and expands `strategy.matrix`.
pub(crate) fn evaluate_matrix(raw: &Node, ctx: &Contexts) -> Result<Vec<Leg>, String> {
    let value = evaluate_node(raw, STRATEGY, ctx).map_err(|e| format!("strategy.matrix: {e}"))?;
    let input =
        matrix::matrix_input_from_json(&value).map_err(|e| format!("strategy.matrix: {e}"))?;
    matrix::expand(&input, DEFAULT_MAX_LEGS).map_err(|e| format!("strategy.matrix: {e}"))
}

fn evaluate_bool(value: &Dynamic<bool>, names: &[&str], ctx: &Contexts) -> Result<bool, String> {
    if let Some(b) = value.literal {
        return Ok(b);
    }
    let json = evaluate_node(&value.raw.value, names, ctx)?;
    Ok(Value::from(json).is_truthy())
}

fn evaluate_number(value: &Dynamic<f64>, names: &[&str], ctx: &Contexts) -> Result<f64, String> {
    if let Some(n) = value.literal {
        return Ok(n);
    }
    let json = evaluate_node(&value.raw.value, names, ctx)?;
    let n = Value::from(json.clone()).to_number();
    if n.is_nan() {
        return Err(format!("expected a number, got {json}"));
    }
    Ok(n)
}

/// Instantiates a job (a step job or a reusable-workflow call) now.
pub(crate) fn instantiate(req: &JobRequest<'_>, workflows: &[Workflow]) -> JobInstance {
    match decide_condition(req) {
        Ok(None) => {}
        Ok(Some(reason)) => return JobInstance::Skipped { reason },
        Err(reason) => return JobInstance::Failed { reason },
    }
    let result = match &req.job.call {
        Some(call) => instantiate_call(req, call, workflows),
        None => instantiate_run(req),
    };
    result.unwrap_or_else(|reason| JobInstance::Failed { reason })
}

fn leg_contexts(
    base: &Contexts,
    leg: Option<&Leg>,
    index: usize,
    total: usize,
    fail_fast: bool,
    max_parallel: usize,
) -> (Contexts, StrategyContext) {
    let mut ctx = base.clone();
    let matrix = leg.map_or(Json::Object(Map::new()), |l| Json::Object(l.clone()));
    ctx.insert("matrix", Value::from(matrix));
    let strategy = StrategyContext {
        fail_fast,
        job_index: u32::try_from(index).unwrap_or(u32::MAX),
        job_total: u32::try_from(total).unwrap_or(u32::MAX),
        max_parallel: u32::try_from(max_parallel).unwrap_or(u32::MAX),
    };
    let mut object = gantry_expr::Object::new();
    object.insert("fail-fast", Value::Bool(fail_fast));
    object.insert("job-index", Value::Number(index as f64));
    object.insert("job-total", Value::Number(total as f64));
    object.insert("max-parallel", Value::Number(max_parallel as f64));
    ctx.insert("strategy", Value::Object(object));
    (ctx, strategy)
}

/// The display name of a leg: `name:` evaluated (with the matrix values appended when it does
/// not use the matrix), or the job id with the matrix values.
pub(crate) fn leg_name(job: &Job, leg: Option<&Leg>, ctx: &Contexts) -> Result<String, String> {
    let empty = Map::new();
    let matrix = leg.unwrap_or(&empty);
    match &job.name {
        Some(name) if !name.value.is_empty() => {
            let text = evaluate_string(&name.value, LEG, ctx).map_err(|e| format!("name: {e}"))?;
            if template_contexts(&name.value).iter().any(|c| c == "matrix") {
                Ok(text)
            } else {
                Ok(leg_display_name(&text, matrix))
            }
        }
        _ => Ok(leg_display_name(&job.id.value, matrix)),
    }
}

fn instantiate_run(req: &JobRequest<'_>) -> Result<JobInstance, String> {
    let job = req.job;
    let base = job_contexts(req.scope, &req.needs);
    let strategy = evaluate_strategy(job, &base)?;
    let has_matrix = strategy.legs.is_some();
    let legs: Vec<Option<Leg>> = match strategy.legs {
        Some(legs) => legs.into_iter().map(Some).collect(),
        None => vec![None],
    };
    if legs.is_empty() {
        return Ok(JobInstance::Skipped {
            reason: "the matrix has no legs (every combination is excluded)".to_owned(),
        });
    }
    let total = legs.len();
    let max_parallel = strategy.max_parallel.unwrap_or(total).min(total).max(1);
    let workflow_env = env_map(req.workflow.env.as_ref(), &base, "env (workflow)")?;
    let defaults = merge_defaults(req.workflow.defaults.as_ref(), job.defaults.as_ref());
    let steps: Vec<_> = job.steps.iter().map(step_spec).collect();
    let outputs = job.outputs.as_ref().map(string_map).unwrap_or_default();
    let secret_names = req.scope.secrets.names(&req.scope.secret_names);
    let mut specs = Vec::with_capacity(total);
    for (index, leg) in legs.iter().enumerate() {
        let (ctx, strategy_ctx) = leg_contexts(
            &base,
            leg.as_ref(),
            index,
            total,
            strategy.fail_fast,
            max_parallel,
        );
        let at = |field: &str, e: String| {
            if has_matrix {
                format!("{field} (leg {}): {e}", index + 1)
            } else {
                format!("{field}: {e}")
            }
        };
        let name = leg_name(job, leg.as_ref(), &ctx).map_err(|e| at("job name", e))?;
        let runs_on = match &job.runs_on {
            Some(runs_on) => labels(&runs_on.raw.value, &ctx).map_err(|e| at("runs-on", e))?,
            None => return Err("runs-on: the job has no `runs-on`".to_owned()),
        };
        let timeout_minutes = match &job.timeout_minutes {
            Some(d) => evaluate_number(d, LEG, &ctx).map_err(|e| at("timeout-minutes", e))?,
            None => 360.0,
        };
        let continue_on_error = match &job.continue_on_error {
            Some(d) => evaluate_bool(d, LEG, &ctx).map_err(|e| at("continue-on-error", e))?,
            None => false,
        };
        let container = match &job.container {
            Some(c) => Some(container_spec(&c.raw.value, &ctx).map_err(|e| at("container", e))?),
            None => None,
        };
        let mut services = IndexMap::new();
        for service in &job.services {
            let spec = container_spec(&service.container.raw.value, &ctx)
                .map_err(|e| at(&format!("services.{}", service.name.value), e))?;
            services.insert(service.name.value.clone(), spec);
        }
        let env = env_map(job.env.as_ref(), &ctx, "env").map_err(|e| at("env", e))?;
        let key = if has_matrix {
            JobKey::new(format!("{}.{index}", req.key))
        } else {
            req.key.clone()
        };
        specs.push(JobSpec {
            key: key.as_str().to_owned(),
            job_id: job.id.value.clone(),
            name: req.scope.name(&name),
            workflow: WorkflowRef {
                file: req.workflow.file.clone(),
                name: req.workflow.display_name().to_owned(),
            },
            runs_on,
            github: req.scope.github.clone(),
            inputs: req.scope.inputs.clone(),
            vars: req.scope.vars.clone(),
            needs: req.needs.clone(),
            matrix: leg.clone().map_or(Json::Null, Json::Object),
            strategy: strategy_ctx,
            workflow_env: workflow_env.clone(),
            env,
            defaults: defaults.clone(),
            steps: steps.clone(),
            outputs: outputs.clone(),
            timeout_minutes,
            continue_on_error,
            secret_names: secret_names.clone(),
            container,
            services,
        });
    }
    Ok(JobInstance::Run {
        legs: specs,
        fail_fast: strategy.fail_fast,
        max_parallel,
        secrets: req.scope.secrets.clone(),
    })
}

/// `env:` as templates; a mapping given as one expression is evaluated now.
fn env_map(
    map: Option<&StringMap>,
    ctx: &Contexts,
    field: &str,
) -> Result<IndexMap<String, String>, String> {
    let Some(map) = map else {
        return Ok(IndexMap::new());
    };
    let mut out = string_map(map);
    if let Some(expression) = &map.expression {
        let value = evaluation::evaluate_template(&expression.value, LEG, ctx)
            .map_err(|e| format!("{field}: {e}"))?;
        let Json::Object(object) = value else {
            return Err(format!("{field}: expected a mapping, got {value}"));
        };
        for (k, v) in object {
            out.insert(k, evaluation::display_value(&v));
        }
    }
    Ok(out)
}

/// `defaults.run`, job over workflow.
pub(crate) fn merge_defaults(workflow: Option<&Defaults>, job: Option<&Defaults>) -> RunDefaults {
    let pick = |f: fn(&Defaults) -> Option<&crate::span::Spanned<String>>| {
        job.and_then(f)
            .or_else(|| workflow.and_then(f))
            .map(|s| s.value.clone())
    };
    RunDefaults {
        shell: pick(|d| d.shell.as_ref()),
        working_directory: pick(|d| d.working_directory.as_ref()),
    }
}

/// `runs-on` evaluated to labels: a string, a list, or `{group, labels}`.
fn labels(raw: &Node, ctx: &Contexts) -> Result<Vec<String>, String> {
    let value = evaluate_node(raw, LEG, ctx)?;
    let mut out = Vec::new();
    collect_labels(&value, &mut out)?;
    if out.is_empty() {
        return Err("no runner label".to_owned());
    }
    Ok(out)
}

fn collect_labels(value: &Json, out: &mut Vec<String>) -> Result<(), String> {
    match value {
        Json::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
        Json::String(_) | Json::Null => {}
        Json::Array(items) => {
            for item in items {
                collect_labels(item, out)?;
            }
        }
        Json::Object(map) => {
            if let Some(labels) = map.get("labels") {
                collect_labels(labels, out)?;
            }
            if let Some(Json::String(group)) = map.get("group") {
                // A runner group has no meaning for a local runner; keep it visible.
                out.push(format!("group:{group}"));
            }
        }
        other => return Err(format!("expected a label, got {other}")),
    }
    Ok(())
}

/// A container or service: image, options, ports and volumes evaluated; `env` and
/// `credentials` stay templates (they may read secrets, which only the runner has).
fn container_spec(raw: &Node, ctx: &Contexts) -> Result<ContainerSpec, String> {
    let text = |node: &Node, field: &str| -> Result<String, String> {
        let s = node.scalar_to_string().unwrap_or_default();
        evaluate_string(&s, LEG, ctx).map_err(|e| format!("{field}: {e}"))
    };
    let list =
        |node: Option<&crate::span::Spanned<Node>>, field: &str| -> Result<Vec<String>, String> {
            let Some(node) = node else {
                return Ok(Vec::new());
            };
            match evaluate_node(&node.value, LEG, ctx).map_err(|e| format!("{field}: {e}"))? {
                Json::Array(items) => Ok(items.iter().map(evaluation::display_value).collect()),
                Json::Null => Ok(Vec::new()),
                other => Ok(vec![evaluation::display_value(&other)]),
            }
        };
    match raw {
        Node::Map(_) => {
            let image = match raw.get("image") {
                Some(n) => text(&n.value, "image")?,
                None => String::new(),
            };
            let env = raw
                .get("env")
                .and_then(|n| n.value.as_map())
                .map(|entries| {
                    entries
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.value.clone(),
                                v.value.scalar_to_string().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let options = match raw.get("options") {
                Some(n) => Some(text(&n.value, "options")?),
                None => None,
            };
            Ok(ContainerSpec {
                image,
                env,
                ports: list(raw.get("ports"), "ports")?,
                volumes: list(raw.get("volumes"), "volumes")?,
                options,
                credentials: raw.get("credentials").map(|n| n.value.to_json()),
            })
        }
        other => {
            let value = evaluate_node(other, LEG, ctx)?;
            match value {
                Json::String(image) => Ok(ContainerSpec {
                    image,
                    ..ContainerSpec::default()
                }),
                Json::Object(map) => Ok(ContainerSpec {
                    image: map
                        .get("image")
                        .map(evaluation::display_value)
                        .unwrap_or_default(),
                    ..ContainerSpec::default()
                }),
                other => Err(format!("expected an image name or a mapping, got {other}")),
            }
        }
    }
}

/// Finds the workflow a `uses:` of a call names: `./path` among `workflows` (by file, relative
/// to the repository root). A remote workflow is an error.
pub(crate) fn find_called_workflow<'w>(
    uses: &str,
    workflows: &'w [Workflow],
) -> Result<&'w Workflow, String> {
    let Some(path) = uses.strip_prefix("./") else {
        return Err(format!(
            "reusable workflow `{uses}` is not available offline: Gantry only calls workflows of \
             this repository (`uses: ./.github/workflows/<file>.yml`)"
        ));
    };
    let path = path.split('@').next().unwrap_or(path);
    workflows
        .iter()
        .find(|w| {
            let file = w.file.trim_start_matches("./");
            file == path || file.ends_with(&format!("/{path}"))
        })
        .ok_or_else(|| {
            format!("reusable workflow `{uses}`: no such workflow file in this repository")
        })
}

/// Checks the call can be made: the called workflow exists, is callable and the nesting is
/// within GitHub's limit.
pub(crate) fn check_call<'w>(
    call: &ReusableCall,
    depth: usize,
    workflows: &'w [Workflow],
) -> Result<&'w Workflow, String> {
    if depth + 1 > MAX_CALL_DEPTH {
        return Err(format!(
            "reusable workflow `{}` is nested too deeply: GitHub allows at most {MAX_CALL_DEPTH} \
             levels of called workflows",
            call.uses.value
        ));
    }
    let called = find_called_workflow(&call.uses.value, workflows)?;
    if called.on.workflow_call.is_none() {
        return Err(format!(
            "`{}` cannot be called: it has no `on: workflow_call` trigger",
            call.uses.value
        ));
    }
    Ok(called)
}

fn instantiate_call(
    req: &JobRequest<'_>,
    call: &ReusableCall,
    workflows: &[Workflow],
) -> Result<JobInstance, String> {
    let called = check_call(call, req.scope.depth, workflows)?;
    let interface = called
        .on
        .workflow_call
        .as_ref()
        .expect("check_call accepts only callable workflows");
    let job = req.job;
    let base = job_contexts(req.scope, &req.needs);
    let strategy = evaluate_strategy(job, &base)?;
    let has_matrix = strategy.legs.is_some();
    let legs: Vec<Option<Leg>> = match strategy.legs {
        Some(legs) => legs.into_iter().map(Some).collect(),
        None => vec![None],
    };
    if legs.is_empty() {
        return Ok(JobInstance::Skipped {
            reason: "the matrix has no legs (every combination is excluded)".to_owned(),
        });
    }
    let total = legs.len();
    let max_parallel = strategy.max_parallel.unwrap_or(total).min(total).max(1);
    let secrets = match &call.secrets {
        None => req.scope.secrets.mapped(Vec::new()),
        Some(CallSecrets::Inherit(_)) => req.scope.secrets.clone(),
        Some(CallSecrets::Map(map)) => {
            let entries: Vec<(String, String)> = string_map(map).into_iter().collect();
            for secret in &interface.secrets {
                if secret.required && !entries.iter().any(|(n, _)| *n == secret.name.value) {
                    return Err(format!(
                        "secrets: `{}` is required by `{}` but not passed",
                        secret.name.value, call.uses.value
                    ));
                }
            }
            req.scope.secrets.mapped(entries)
        }
    };
    if call.secrets.is_none()
        && let Some(secret) = interface.secrets.iter().find(|s| s.required)
    {
        return Err(format!(
            "secrets: `{}` is required by `{}` but the call passes no secrets",
            secret.name.value, call.uses.value
        ));
    }
    let mut call_legs = Vec::with_capacity(total);
    for (index, leg) in legs.iter().enumerate() {
        let (ctx, _) = leg_contexts(
            &base,
            leg.as_ref(),
            index,
            total,
            strategy.fail_fast,
            max_parallel,
        );
        let at = |field: &str, e: String| {
            if has_matrix {
                format!("{field} (leg {}): {e}", index + 1)
            } else {
                format!("{field}: {e}")
            }
        };
        let name = leg_name(job, leg.as_ref(), &ctx).map_err(|e| at("job name", e))?;
        let mut given = Vec::with_capacity(call.with.len());
        for (key, value) in &call.with {
            let value = evaluate_node(&value.value, LEG, &ctx)
                .map_err(|e| at(&format!("with.{}", key.value), e))?;
            given.push((key.value.clone(), value));
        }
        let mut defaults_ctx = Contexts::new();
        defaults_ctx.insert("github", Value::from(&req.scope.github));
        defaults_ctx.insert("vars", Value::from(&req.scope.vars));
        defaults_ctx.insert(
            "inputs",
            Value::from(Json::Object(given.iter().cloned().collect())),
        );
        let inputs = type_inputs(
            &interface.inputs,
            &given,
            InputSource::Call,
            Some(&defaults_ctx),
        )
        .map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            at("with", text.join("; "))
        })?;
        let prefix = match leg {
            Some(values) => JobKey::new(leg_display_name(req.key.as_str(), values)),
            None => req.key.clone(),
        };
        call_legs.push(CallLeg {
            prefix,
            name: req.scope.name(&name),
            matrix: leg.clone().map_or(Json::Null, Json::Object),
            inputs,
            secrets: secrets.clone(),
            workflow: called.file.clone(),
        });
    }
    Ok(JobInstance::Call {
        legs: call_legs,
        fail_fast: strategy.fail_fast,
        max_parallel,
    })
}
