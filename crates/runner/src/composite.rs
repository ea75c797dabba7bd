//! Local composite actions (`uses: ./path`): the action's `action.yml` is read through the
//! workflow crate, its inputs filled from `with:` and defaults, its steps run in a scope of
//! their own (own `steps` context, `inputs`, `github.action_path`), and its outputs mapped back.

use crate::action::contained_path;
use crate::job::{JobRun, Scope, evaluate_string};
use gantry_expr::{Contexts, Object, Value};
use gantry_protocol::{AnnotationLevel, Conclusion, StepSpec};
use gantry_workflow::action::{ActionError, ActionRuns, load_action};
use indexmap::IndexMap;
use std::time::Duration;

/// How deep composite actions may nest, as on GitHub.
pub const MAX_DEPTH: usize = 10;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_composite(
    job: &mut JobRun,
    event_step: usize,
    _step: &StepSpec,
    path: &str,
    with: IndexMap<String, String>,
    env: &IndexMap<String, String>,
    ctx: &Contexts,
    scope: &mut Scope,
    _timeout: Option<Duration>,
) -> (Conclusion, IndexMap<String, String>) {
    let fail = |job: &JobRun, message: String| {
        job.annotate(Some(event_step), AnnotationLevel::Error, &message);
        (Conclusion::Failure, IndexMap::new())
    };
    if scope.depth >= MAX_DEPTH {
        return fail(
            job,
            format!("`{path}`: composite actions are nested more than {MAX_DEPTH} levels deep"),
        );
    }
    let Some(dir) = contained_path(&job.req.workspace, path) else {
        return fail(job, format!("`{path}` is outside the workspace"));
    };
    let action = match load_action(&dir) {
        Ok(action) => action,
        // Missing: most often the repository is not checked out yet.
        Err(e @ ActionError::Missing(_)) => {
            return fail(
                job,
                format!(
                    "`uses: {path}`: {e}. Is the repository checked out (actions/checkout) before \
                     this step?"
                ),
            );
        }
        Err(e) => return fail(job, format!("`uses: {path}`: {e}")),
    };
    let steps = match &action.runs {
        ActionRuns::Composite(steps) => steps.clone(),
        ActionRuns::Other(using) => {
            return fail(
                job,
                format!(
                    "`{path}` is a `{using}` action; Gantry runs composite actions only \
                     (runs.using: composite)"
                ),
            );
        }
    };

    // Inputs: `with:` values, then defaults (which may be expressions).
    let mut inputs = Object::new();
    for (name, input) in &action.inputs {
        let key = name.to_ascii_lowercase();
        let value = match with.get(&key) {
            Some(v) => v.clone(),
            None => match &input.default {
                Some(default) => match evaluate_string(default, ctx) {
                    Ok(v) => v,
                    Err(e) => {
                        return fail(job, format!("default of input `{name}` of `{path}`: {e}"));
                    }
                },
                None => {
                    if input.required {
                        job.annotate(
                            Some(event_step),
                            AnnotationLevel::Warning,
                            &format!("Input required and not supplied: {name}"),
                        );
                    }
                    String::new()
                }
            },
        };
        if let Some(message) = &input.deprecation_message
            && with.contains_key(&key)
        {
            job.annotate(
                Some(event_step),
                AnnotationLevel::Warning,
                &format!("Input '{name}' has been deprecated with message: {message}"),
            );
        }
        inputs.insert(name.clone(), Value::String(value));
    }
    let unexpected: Vec<&str> = with
        .keys()
        .filter(|k| !action.inputs.keys().any(|n| n.eq_ignore_ascii_case(k)))
        .map(String::as_str)
        .collect();
    if !unexpected.is_empty() {
        let valid: Vec<&str> = action.inputs.keys().map(String::as_str).collect();
        job.annotate(
            Some(event_step),
            AnnotationLevel::Warning,
            &format!(
                "Unexpected input(s) '{}', valid inputs are ['{}']",
                unexpected.join("', '"),
                valid.join("', '")
            ),
        );
    }

    let mut inner = Scope {
        steps: Object::new(),
        inputs: Some(Value::Object(inputs)),
        extra_env: env.clone(),
        action_path: Some(dir.clone()),
        outer_step: Some(event_step),
        depth: scope.depth + 1,
        failed: false,
    };
    for (index, inner_step) in steps.iter().enumerate() {
        let result = Box::pin(job.run_step(index, inner_step, &mut inner)).await;
        if result.conclusion == Conclusion::Failure {
            inner.failed = true;
        }
    }

    let out_ctx = job.contexts(&inner, env, gantry_expr::JobStatus::Success);
    let mut outputs = IndexMap::new();
    for (name, value) in &action.outputs {
        match evaluate_string(value, &out_ctx) {
            Ok(v) => {
                outputs.insert(name.clone(), v);
            }
            Err(e) => job.annotate(
                Some(event_step),
                AnnotationLevel::Warning,
                &format!("output `{name}` of `{path}`: {e}"),
            ),
        }
    }
    let conclusion = if inner.failed {
        Conclusion::Failure
    } else {
        Conclusion::Success
    };
    (conclusion, outputs)
}
