//! Checks of a job that calls a reusable workflow against the called workflow: the inputs
//! and secrets it passes (defined, required, of the right type) and the permissions the
//! called workflow asks for (never more than the calling job has). The planner runs these
//! when it loads the called workflow; diagnostics point into the calling file.

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{CallSecrets, InputType, Job, Permissions, Workflow};
use crate::span::Span;
use crate::yaml::Node;

/// The permissions of `GITHUB_TOKEN` when a workflow does not set `permissions` (a setting of
/// the repository or organization).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultPermissions {
    /// "Read and write permissions": every scope `write`.
    #[default]
    Permissive,
    /// "Read repository contents and packages permissions": `contents` and `packages`
    /// `read`, every other scope `none`.
    Restricted,
}

/// An access level of a permission scope, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Read,
    Write,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "none" => Level::None,
            "read" => Level::Read,
            "write" => Level::Write,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "read",
            Level::Write => "write",
        }
    }
}

/// Every permission scope of `GITHUB_TOKEN`, in GitHub's order.
pub const SCOPES: &[&str] = &[
    "actions",
    "artifact-metadata",
    "attestations",
    "checks",
    "code-quality",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
];

/// The level of each scope.
pub type PermissionSet = BTreeMap<&'static str, Level>;

fn all(level: Level) -> PermissionSet {
    SCOPES.iter().map(|s| (*s, level)).collect()
}

/// The permissions `permissions:` grants (`read-all`, `write-all`, or per scope with every
/// unlisted scope `none`).
pub fn permission_set(permissions: &Permissions) -> PermissionSet {
    match permissions {
        Permissions::All(all_of) => match all_of.value.as_str() {
            "read-all" => all(Level::Read),
            "write-all" => all(Level::Write),
            _ => all(Level::None),
        },
        Permissions::Scopes(scopes, _) => {
            let mut set = all(Level::None);
            for (scope, level) in scopes {
                if let (Some(key), Some(level)) = (
                    SCOPES.iter().find(|s| **s == scope.value),
                    Level::parse(&level.value),
                ) {
                    set.insert(key, level);
                }
            }
            set
        }
    }
}

fn default_set(defaults: DefaultPermissions) -> PermissionSet {
    match defaults {
        DefaultPermissions::Permissive => all(Level::Write),
        DefaultPermissions::Restricted => {
            let mut set = all(Level::None);
            set.insert("contents", Level::Read);
            set.insert("packages", Level::Read);
            set
        }
    }
}

/// The permissions a job of `workflow` runs with: its own, else the workflow's, else the
/// defaults.
pub fn job_permissions(
    workflow: &Workflow,
    job: &Job,
    defaults: DefaultPermissions,
) -> PermissionSet {
    job.permissions
        .as_ref()
        .or(workflow.permissions.as_ref())
        .map_or_else(|| default_set(defaults), permission_set)
}

/// Scopes where `requested` exceeds `allowed`, as `scope: level` lists for both.
fn excess(requested: &PermissionSet, allowed: &PermissionSet) -> Option<(String, String)> {
    let over: Vec<&str> = SCOPES
        .iter()
        .copied()
        .filter(|s| {
            requested.get(s).copied().unwrap_or(Level::None)
                > allowed.get(s).copied().unwrap_or(Level::None)
        })
        .collect();
    if over.is_empty() {
        return None;
    }
    let list = |set: &PermissionSet| {
        over.iter()
            .map(|s| {
                format!(
                    "{s}: {}",
                    set.get(s).copied().unwrap_or(Level::None).as_str()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some((list(requested), list(allowed)))
}

/// Checks the call made by `job` of `caller` to `callee` (the called workflow, already
/// parsed). `reference` is the `uses:` value, used in messages.
pub fn validate_call(
    caller: &Workflow,
    job: &Job,
    callee: &Workflow,
    defaults: DefaultPermissions,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(call) = &job.call else {
        return out;
    };
    let reference = call.uses.value.as_str();
    let Some(interface) = &callee.on.workflow_call else {
        out.push(
            Diagnostic::error(
                "not-reusable",
                format!("`{reference}` cannot be called: it has no `on: workflow_call`"),
                call.uses.span,
            )
            .with_label(call.uses.span, "not a reusable workflow")
            .with_help("add `workflow_call` to the `on:` events of the called workflow"),
        );
        return out;
    };

    // Inputs.
    let input_names: Vec<&str> = interface
        .inputs
        .iter()
        .map(|i| i.name.value.as_str())
        .collect();
    for (key, value) in &call.with {
        let Some(input) = interface.inputs.iter().find(|i| i.name.value == key.value) else {
            let help = did_you_mean(&key.value, input_names.iter().copied()).unwrap_or_else(|| {
                if input_names.is_empty() {
                    format!("`{reference}` has no inputs; remove `with`")
                } else {
                    format!("its inputs are: {}", input_names.join(", "))
                }
            });
            out.push(
                Diagnostic::error(
                    "unknown-input",
                    format!("`{}` is not an input of `{reference}`", key.value),
                    key.span,
                )
                .with_label(key.span, "not defined by the called workflow")
                .with_help(help),
            );
            continue;
        };
        if let Some(problem) = input_type_problem(&value.value, input.kind()) {
            out.push(
                Diagnostic::error(
                    "input-type-mismatch",
                    format!(
                        "the input `{}` of `{reference}` is a {}, {problem}",
                        key.value,
                        input.kind().as_str()
                    ),
                    value.span,
                )
                .with_label(value.span, format!("not a {}", input.kind().as_str()))
                .with_help(match input.kind() {
                    InputType::Boolean => "pass `true`, `false` or an expression",
                    InputType::Number => "pass a number or an expression",
                    _ => "pass a string or an expression",
                }),
            );
        }
    }
    for input in &interface.inputs {
        if input.is_required()
            && input.default.is_none()
            && !call.with.iter().any(|(k, _)| k.value == input.name.value)
        {
            out.push(
                Diagnostic::error(
                    "missing-input",
                    format!(
                        "the required input `{}` of `{reference}` is not passed",
                        input.name.value
                    ),
                    call.uses.span,
                )
                .with_label(call.uses.span, format!("`{}` missing", input.name.value))
                .with_help(format!(
                    "add `with:` and `{}: <value>` to this job",
                    input.name.value
                )),
            );
        }
    }

    // Secrets (with `inherit`, every secret of the caller is passed).
    if let Some(CallSecrets::Map(secrets)) = &call.secrets {
        let names: Vec<&str> = interface
            .secrets
            .iter()
            .map(|s| s.name.value.as_str())
            .collect();
        for (key, _) in &secrets.entries {
            if !names.contains(&key.value.as_str()) {
                let help = did_you_mean(&key.value, names.iter().copied()).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("`{reference}` declares no secrets; remove it or declare it under `on.workflow_call.secrets`")
                    } else {
                        format!("its secrets are: {}", names.join(", "))
                    }
                });
                out.push(
                    Diagnostic::error(
                        "unknown-secret",
                        format!("`{}` is not a secret of `{reference}`", key.value),
                        key.span,
                    )
                    .with_label(key.span, "not declared by the called workflow")
                    .with_help(help),
                );
            }
        }
    }
    if !matches!(call.secrets, Some(CallSecrets::Inherit(_))) {
        let passed: Vec<&str> = match &call.secrets {
            Some(CallSecrets::Map(m)) => m.entries.iter().map(|(k, _)| k.value.as_str()).collect(),
            _ => Vec::new(),
        };
        for secret in interface.secrets.iter().filter(|s| s.required) {
            if !passed.contains(&secret.name.value.as_str()) {
                out.push(
                    Diagnostic::error(
                        "missing-secret",
                        format!("the required secret `{}` of `{reference}` is not passed", secret.name.value),
                        call.uses.span,
                    )
                    .with_label(call.uses.span, format!("`{}` missing", secret.name.value))
                    .with_help(format!(
                        "add `secrets:` with `{}: ${{{{ secrets.<name> }}}}`, or `secrets: inherit`",
                        secret.name.value
                    )),
                );
            }
        }
    }

    // Permissions: the called workflow and each of its jobs get at most what the calling
    // job has.
    let allowed = job_permissions(caller, job, defaults);
    let at: Span = job.id.span;
    if let Some(requested) = &callee.permissions
        && let Some((want, have)) = excess(&permission_set(requested), &allowed)
    {
        out.push(permission_error(
            at,
            reference,
            &format!("the called workflow `{reference}`"),
            &want,
            &have,
        ));
    }
    for nested in &callee.jobs {
        if let Some(requested) = &nested.permissions
            && let Some((want, have)) = excess(&permission_set(requested), &allowed)
        {
            out.push(permission_error(
                at,
                reference,
                &format!("the job `{}` of `{reference}`", nested.display_name()),
                &want,
                &have,
            ));
        }
    }
    out
}

fn permission_error(at: Span, reference: &str, who: &str, want: &str, have: &str) -> Diagnostic {
    Diagnostic::error(
        "call-permissions",
        format!("{who} asks for `{want}`, but the calling job only has `{have}`"),
        at,
    )
    .with_label(at, format!("calls `{reference}`"))
    .with_help("grant these permissions with `permissions:` on the calling job (or its workflow), or lower what the called workflow asks for")
}

/// Why a literal `with:` value does not fit an input type (`None` when it fits or is an
/// expression evaluated later).
fn input_type_problem(value: &Node, kind: InputType) -> Option<String> {
    if value.has_expression() {
        return None;
    }
    match (kind, value) {
        (InputType::Boolean, Node::Bool(_)) | (InputType::Number, Node::Number(_)) => None,
        (InputType::Boolean, other) => Some(format!("got {}", describe(other))),
        (InputType::Number, other) => Some(format!("got {}", describe(other))),
        (_, Node::Seq(_) | Node::Map(_)) => Some(format!("got {}", describe(value))),
        _ => None,
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::String(s) => format!("the string \"{s}\""),
        Node::Bool(b) => format!("the boolean `{b}`"),
        Node::Number(_) => format!(
            "the number `{}`",
            node.scalar_to_string().unwrap_or_default()
        ),
        Node::Null => "nothing".to_owned(),
        Node::Seq(_) => "a sequence".to_owned(),
        Node::Map(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_workflow;

    fn call(caller: &str, callee: &str, defaults: DefaultPermissions) -> Vec<Diagnostic> {
        let caller = parse_workflow("caller.yml", caller)
            .workflow
            .expect("caller");
        let callee = parse_workflow("callee.yml", callee)
            .workflow
            .expect("callee");
        let job = caller
            .jobs
            .iter()
            .find(|j| j.call.is_some())
            .expect("a calling job");
        validate_call(&caller, job, &callee, defaults)
    }

    const CALLEE: &str = "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\n        required: true\n      fast:\n        type: boolean\n    secrets:\n      token:\n        required: true\njobs:\n  build:\n    permissions:\n      contents: write\n    runs-on: x\n    steps:\n      - run: echo\n";

    #[test]
    fn a_complete_call_is_accepted() {
        let caller = "on: push\njobs:\n  c:\n    uses: o/r/.github/workflows/b.yml@v1\n    with:\n      target: app\n      fast: true\n    secrets: inherit\n";
        assert!(call(caller, CALLEE, DefaultPermissions::Permissive).is_empty());
    }

    #[test]
    fn inputs_and_secrets_are_checked() {
        let caller = "on: push\njobs:\n  c:\n    uses: o/r/.github/workflows/b.yml@v1\n    with:\n      fast: maybe\n      targte: app\n    secrets:\n      tokn: x\n";
        let codes: Vec<&str> = call(caller, CALLEE, DefaultPermissions::Permissive)
            .iter()
            .map(|d| d.code)
            .collect();
        assert_eq!(
            codes,
            [
                "input-type-mismatch",
                "unknown-input",
                "missing-input",
                "unknown-secret",
                "missing-secret"
            ]
        );
    }

    #[test]
    fn permissions_may_not_grow() {
        let caller = "on: push\npermissions:\n  contents: read\njobs:\n  c:\n    uses: o/r/.github/workflows/b.yml@v1\n    with:\n      target: app\n    secrets: inherit\n";
        let diagnostics = call(caller, CALLEE, DefaultPermissions::Permissive);
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0].message.contains("contents: write"),
            "{}",
            diagnostics[0].message
        );
        assert!(
            diagnostics[0].message.contains("contents: read"),
            "{}",
            diagnostics[0].message
        );
        let restricted = "on: push\njobs:\n  c:\n    uses: o/r/.github/workflows/b.yml@v1\n    with:\n      target: app\n    secrets: inherit\n";
        assert_eq!(
            call(restricted, CALLEE, DefaultPermissions::Restricted).len(),
            1
        );
        assert!(call(restricted, CALLEE, DefaultPermissions::Permissive).is_empty());
    }
}
