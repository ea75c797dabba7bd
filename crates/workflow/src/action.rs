//! Action metadata files (`action.yml`): the inputs, outputs and `runs:` of an action, as the
//! runner needs them to run a local composite action.

use crate::diagnostic::Diagnostic;
use crate::parse::convert_steps;
use crate::spec::step_spec;
use crate::yaml::{Node, YamlLimits, parse_yaml};
use gantry_protocol::StepSpec;
use indexmap::IndexMap;
use std::path::Path;

/// A parsed `action.yml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub name: String,
    pub description: String,
    /// Inputs by name, in file order.
    pub inputs: IndexMap<String, ActionInput>,
    /// Output name to its `value:` template (composite actions).
    pub outputs: IndexMap<String, String>,
    pub runs: ActionRuns,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionInput {
    pub description: String,
    pub required: bool,
    /// `default:`, a template.
    pub default: Option<String>,
    pub deprecation_message: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionRuns {
    /// `runs.using: composite` and its steps.
    Composite(Vec<StepSpec>),
    /// Any other `runs.using` (`node20`, `docker`...), named.
    Other(String),
}

/// Why an action could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no action.yml or action.yaml in {0}")]
    Missing(String),
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid action: {}", render(.diagnostics, .path, .source_text))]
    Invalid {
        path: String,
        source_text: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(diagnostics: &[Diagnostic], path: &str, source: &str) -> String {
    crate::diagnostic::render_all(diagnostics, path, source, false)
}

/// Reads `action.yml` (or `action.yaml`) in `dir`.
pub fn load_action(dir: &Path) -> Result<Action, ActionError> {
    let path = ["action.yml", "action.yaml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ActionError::Missing(dir.display().to_string()))?;
    let shown = path.display().to_string();
    let source = std::fs::read_to_string(&path).map_err(|source| ActionError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_action(&source).map_err(|diagnostics| ActionError::Invalid {
        path: shown,
        source_text: source,
        diagnostics,
    })
}

/// Parses the text of an `action.yml`.
pub fn parse_action(source: &str) -> Result<Action, Vec<Diagnostic>> {
    let root = parse_yaml(source, &YamlLimits::default()).map_err(|d| vec![*d])?;
    let mut diagnostics = Vec::new();
    if root.value.as_map().is_none() {
        return Err(vec![Diagnostic::error(
            "wrong-type",
            format!(
                "an action file must be a mapping, not a {}",
                root.value.kind()
            ),
            root.span,
        )]);
    }
    let text = |node: Option<&crate::span::Spanned<Node>>| {
        node.and_then(|n| n.value.scalar_to_string())
            .unwrap_or_default()
    };
    let mut action = Action {
        name: text(root.value.get("name")),
        description: text(root.value.get("description")),
        inputs: IndexMap::new(),
        outputs: IndexMap::new(),
        runs: ActionRuns::Other(String::new()),
    };
    if let Some(inputs) = root.value.get("inputs").and_then(|n| n.value.as_map()) {
        for (name, spec) in inputs {
            let required = match spec.value.get("required").map(|n| &n.value) {
                Some(Node::Bool(b)) => *b,
                Some(Node::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            action.inputs.insert(
                name.value.clone(),
                ActionInput {
                    description: text(spec.value.get("description")),
                    required,
                    default: spec
                        .value
                        .get("default")
                        .and_then(|n| n.value.scalar_to_string()),
                    deprecation_message: spec
                        .value
                        .get("deprecationMessage")
                        .and_then(|n| n.value.scalar_to_string()),
                },
            );
        }
    }
    if let Some(outputs) = root.value.get("outputs").and_then(|n| n.value.as_map()) {
        for (name, spec) in outputs {
            action
                .outputs
                .insert(name.value.clone(), text(spec.value.get("value")));
        }
    }
    let Some(runs) = root.value.get("runs") else {
        return Err(vec![
            Diagnostic::error("missing-key", "the action has no `runs:`", root.span)
                .with_help("add `runs:` with `using: composite` and `steps:`"),
        ]);
    };
    let using = text(runs.value.get("using"));
    if using != "composite" {
        action.runs = ActionRuns::Other(using);
        return Ok(action);
    }
    let Some(steps_node) = runs.value.get("steps") else {
        return Err(vec![Diagnostic::error(
            "missing-key",
            "a composite action needs `runs.steps`",
            runs.span,
        )]);
    };
    let steps = convert_steps(steps_node);
    for step in &steps {
        match &step.action {
            crate::model::StepAction::Run { run, shell, .. } if shell.is_none() => {
                diagnostics.push(
                    Diagnostic::error(
                        "missing-shell",
                        "a `run` step of a composite action needs `shell:`",
                        run.span,
                    )
                    .with_help("add `shell: bash` (or sh, python, pwsh) to this step"),
                );
            }
            crate::model::StepAction::Invalid => diagnostics.push(Diagnostic::error(
                "step-missing-run-or-uses",
                "a step needs `run:` or `uses:`",
                step.span,
            )),
            _ => {}
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    action.runs = ActionRuns::Composite(steps.iter().map(step_spec).collect());
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_protocol::StepKind;

    #[test]
    fn a_composite_action_reads_inputs_outputs_and_steps() {
        let action = parse_action(
            "name: Greet\ninputs:\n  who:\n    required: true\n    default: world\n\
             outputs:\n  greeting:\n    value: ${{ steps.say.outputs.text }}\n\
             runs:\n  using: composite\n  steps:\n    - id: say\n      shell: bash\n      \
             run: echo \"text=hi ${{ inputs.who }}\" >> $GITHUB_OUTPUT\n    - uses: ./inner\n",
        )
        .expect("valid");
        assert_eq!(action.name, "Greet");
        assert!(action.inputs["who"].required);
        assert_eq!(action.inputs["who"].default.as_deref(), Some("world"));
        assert_eq!(action.outputs["greeting"], "${{ steps.say.outputs.text }}");
        let ActionRuns::Composite(steps) = &action.runs else {
            panic!("composite expected");
        };
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].id, "say");
        assert_eq!(steps[0].shell.as_deref(), Some("bash"));
        assert!(matches!(&steps[1].kind, StepKind::Uses { uses, .. } if uses == "./inner"));
    }

    #[test]
    fn a_composite_run_step_without_shell_is_refused() {
        let errors = parse_action("name: x\nruns:\n  using: composite\n  steps:\n    - run: ls\n")
            .expect_err("shell is required");
        assert_eq!(errors[0].code, "missing-shell");
        assert_eq!(errors[0].line_column(), Some((5, 12)));
    }

    #[test]
    fn node_actions_are_named() {
        let action =
            parse_action("name: x\nruns:\n  using: node20\n  main: index.js\n").expect("valid");
        assert_eq!(action.runs, ActionRuns::Other("node20".into()));
    }
}
