//! The typed model turned into the protocol's specs, which travel to runners: templates stay
//! unevaluated, literal values become their string form.

use crate::model::{Dynamic, Step, StepAction, StringMap};
use gantry_protocol::{StepKind, StepSpec};
use indexmap::IndexMap;

/// A step as the runner receives it.
pub fn step_spec(step: &Step) -> StepSpec {
    let (kind, shell, working_directory) = match &step.action {
        StepAction::Run {
            run,
            shell,
            working_directory,
        } => (
            StepKind::Run {
                script: run.value.clone(),
            },
            shell.as_ref().map(|s| s.value.clone()),
            working_directory.as_ref().map(|s| s.value.clone()),
        ),
        StepAction::Uses { uses, with } => (
            StepKind::Uses {
                uses: uses.value.clone(),
                with: with.as_ref().map(string_map).unwrap_or_default(),
            },
            None,
            None,
        ),
        // Validation reports such a step; a spec is only built from valid workflows.
        StepAction::Invalid => (
            StepKind::Run {
                script: String::new(),
            },
            None,
            None,
        ),
    };
    StepSpec {
        id: step.id.clone(),
        explicit_id: step.user_id.is_some(),
        name: step.name.as_ref().map(|n| n.value.clone()),
        default_name: step.default_name.clone(),
        condition: step.condition.expression.clone(),
        kind,
        env: step.env.as_ref().map(string_map).unwrap_or_default(),
        continue_on_error: step
            .continue_on_error
            .as_ref()
            .map(dynamic_text)
            .unwrap_or_else(|| "false".to_owned()),
        timeout_minutes: step.timeout_minutes.as_ref().map(dynamic_text),
        working_directory,
        shell,
        line: step.span.start.line,
    }
}

/// A mapping of templates in file order. A mapping given as one expression is not expanded
/// here (the runner does not see it); callers evaluate `expression` themselves.
pub fn string_map(map: &StringMap) -> IndexMap<String, String> {
    map.entries
        .iter()
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect()
}

/// A literal-or-expression value as the template string the runner evaluates.
pub fn dynamic_text<T>(value: &Dynamic<T>) -> String {
    value.raw.value.scalar_to_string().unwrap_or_default()
}
