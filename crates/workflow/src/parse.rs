//! Workflow text -> [`Workflow`] plus every problem found, in one pass.
//!
//! [`parse_workflow`] reads the YAML ([`crate::yaml`]), checks it against GitHub's schema
//! (unknown keys, wrong types, missing keys, expressions), converts it to the typed model and
//! runs the semantic checks of [`crate::validate`]. It never panics and keeps going after an
//! error, so one run reports every mistake. The conversion is lenient: values of the wrong
//! shape are left out of the model (the schema check has reported them).
//!
//! ```
//! use gantry_workflow::parse_workflow;
//!
//! let yaml = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo test\n";
//! let parsed = parse_workflow(".github/workflows/ci.yml", yaml);
//! assert!(parsed.diagnostics.is_empty());
//! let workflow = parsed.workflow.expect("a workflow");
//! let step = &workflow.jobs[0].steps[0];
//! assert_eq!((step.id.as_str(), step.display_name()), ("__run", "Run cargo test"));
//! assert_eq!(workflow.jobs[0].condition.expression, "success()");
//!
//! let parsed = parse_workflow("ci.yml", "on: push\njobs:\n  test:\n    runs-on: x\n    needs: tset\n    steps:\n      - run: make\n");
//! let error = &parsed.diagnostics[0];
//! assert_eq!((error.code, error.line_column()), ("unknown-needs", Some((5, 12))));
//! assert!(error.render("ci.yml", "", false).starts_with("error[unknown-needs]"));
//! ```

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::span::{Span, Spanned};
use crate::trigger::{EventFilters, Trigger};
use crate::validate;
use crate::validate::expression::normalize_condition;
use crate::yaml::{Node, YamlLimits, parse_yaml};

/// The result of parsing one workflow file.
#[derive(Clone, Debug, Default)]
pub struct ParsedWorkflow {
    /// The model; `None` when the file is not YAML or not a mapping. May be incomplete when
    /// there are errors.
    pub workflow: Option<Workflow>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ParsedWorkflow {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The workflow, only when there is no error.
    pub fn valid_workflow(&self) -> Option<&Workflow> {
        if self.has_errors() {
            None
        } else {
            self.workflow.as_ref()
        }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Limits and switches for [`parse_workflow_with`].
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    pub limits: YamlLimits,
}

/// Parses and checks a workflow file. `file_name` is used in the model (for the default
/// workflow name) and should be the path relative to the repository root.
pub fn parse_workflow(file_name: &str, source: &str) -> ParsedWorkflow {
    parse_workflow_with(file_name, source, &ParseOptions::default())
}

/// [`parse_workflow`] with explicit limits.
pub fn parse_workflow_with(
    file_name: &str,
    source: &str,
    options: &ParseOptions,
) -> ParsedWorkflow {
    let root = match parse_yaml(source, &options.limits) {
        Ok(root) => root,
        Err(d) => {
            return ParsedWorkflow {
                workflow: None,
                diagnostics: vec![*d],
            };
        }
    };
    let schema = crate::schema::workflow_schema();
    let mut diagnostics = validate::structure::check_structure(&root, source, schema);
    if let Node::Null = root.value {
        diagnostics.clear();
        let start = crate::span::Pos {
            line: 1,
            column: 1,
            offset: 0,
        };
        diagnostics.push(
            Diagnostic::error(
                "empty-workflow",
                "the workflow file is empty",
                Span::new(start, start),
            )
            .with_help("a workflow needs at least `on:` and `jobs:`"),
        );
        return ParsedWorkflow {
            workflow: None,
            diagnostics,
        };
    }
    let workflow = match &root.value {
        Node::Map(_) => Some(convert_workflow(file_name, &root)),
        _ => None,
    };
    if let Some(w) = &workflow {
        diagnostics.extend(validate::validate_workflow(w, source));
    }
    sort_diagnostics(&mut diagnostics);
    ParsedWorkflow {
        workflow,
        diagnostics,
    }
}

/// Orders diagnostics by position (those without one first), keeping the order of equals.
pub(crate) fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| d.span.map(|s| (s.start.line, s.start.column)));
}

fn convert_workflow(file_name: &str, root: &Spanned<Node>) -> Workflow {
    let mut workflow = Workflow {
        file: file_name.to_owned(),
        ..Workflow::default()
    };
    for (key, value) in entries(root) {
        match key.value.as_str() {
            "name" => workflow.name = string_of(value),
            "run-name" => workflow.run_name = string_of(value),
            "on" => workflow.on = convert_on(value),
            "permissions" => workflow.permissions = convert_permissions(value),
            "env" => workflow.env = Some(string_map(value)),
            "defaults" => workflow.defaults = convert_defaults(value),
            "concurrency" => workflow.concurrency = convert_concurrency(value),
            "jobs" => {
                workflow.jobs_span = Some(value.span);
                workflow.jobs = entries(value)
                    .iter()
                    .filter(|(_, v)| matches!(v.value, Node::Map(_)))
                    .map(|(id, job)| convert_job(id, job))
                    .collect();
            }
            _ => {}
        }
    }
    workflow
}

fn entries(node: &Spanned<Node>) -> &[(Spanned<String>, Spanned<Node>)] {
    node.value.as_map().unwrap_or(&[])
}

/// A scalar as a string (GitHub's conversion); `None` for collections.
fn string_of(node: &Spanned<Node>) -> Option<Spanned<String>> {
    node.value
        .scalar_to_string()
        .map(|s| Spanned::new(s, node.span))
}

/// A string or a sequence of scalars.
fn string_list(node: &Spanned<Node>) -> Vec<Spanned<String>> {
    match &node.value {
        Node::Seq(items) => items.iter().filter_map(string_of).collect(),
        Node::Null => Vec::new(),
        _ => string_of(node).into_iter().collect(),
    }
}

fn string_map(node: &Spanned<Node>) -> StringMap {
    let mut map = StringMap {
        span: node.span,
        ..StringMap::default()
    };
    match &node.value {
        Node::Map(entries) => {
            map.entries = entries
                .iter()
                .filter_map(|(k, v)| string_of(v).map(|v| (k.clone(), v)))
                .collect();
        }
        Node::String(s) if s.contains("${{") => {
            map.expression = Some(Spanned::new(s.clone(), node.span));
        }
        _ => {}
    }
    map
}

fn dynamic_bool(node: &Spanned<Node>) -> Dynamic<bool> {
    Dynamic {
        raw: node.clone(),
        literal: match node.value {
            Node::Bool(b) => Some(b),
            _ => None,
        },
    }
}

fn dynamic_number(node: &Spanned<Node>) -> Dynamic<f64> {
    Dynamic {
        raw: node.clone(),
        literal: match node.value {
            Node::Number(n) => Some(n),
            _ => None,
        },
    }
}

fn convert_condition(node: &Spanned<Node>) -> Condition {
    let Some(raw) = string_of(node) else {
        return Condition::success();
    };
    let expression =
        normalize_condition(&raw.value).unwrap_or_else(|_| raw.value.trim().to_owned());
    Condition {
        raw: Some(raw),
        expression,
    }
}

fn convert_on(node: &Spanned<Node>) -> On {
    let mut on = On {
        span: node.span,
        ..On::default()
    };
    match &node.value {
        Node::String(_) | Node::Seq(_) => {
            for event in string_list(node) {
                match event.value.as_str() {
                    "workflow_dispatch" => {
                        on.workflow_dispatch = Some(WorkflowDispatch {
                            inputs: Vec::new(),
                            span: event.span,
                        });
                    }
                    "workflow_call" => {
                        on.workflow_call = Some(WorkflowCall {
                            span: event.span,
                            ..WorkflowCall::default()
                        });
                    }
                    _ => {}
                }
                on.triggers.push(Trigger {
                    event,
                    filters: EventFilters::default(),
                });
            }
        }
        Node::Map(events) => {
            for (event, value) in events {
                let mut trigger = Trigger {
                    event: event.clone(),
                    filters: EventFilters::default(),
                };
                match event.value.as_str() {
                    "schedule" => {
                        for item in value.value.as_seq().unwrap_or(&[]) {
                            if let Some(cron) = item.value.get("cron").and_then(string_of) {
                                on.schedule.push(Schedule {
                                    cron,
                                    timezone: item.value.get("timezone").and_then(string_of),
                                });
                            }
                        }
                    }
                    "workflow_dispatch" => {
                        let inputs = value
                            .value
                            .get("inputs")
                            .map(convert_inputs)
                            .unwrap_or_default();
                        on.workflow_dispatch = Some(WorkflowDispatch {
                            inputs,
                            span: value.span,
                        });
                    }
                    "workflow_call" => on.workflow_call = Some(convert_workflow_call(value)),
                    _ => trigger.filters = convert_filters(value),
                }
                on.triggers.push(trigger);
            }
        }
        _ => {}
    }
    on
}

fn convert_filters(node: &Spanned<Node>) -> EventFilters {
    let mut filters = EventFilters::default();
    for (key, value) in entries(node) {
        let list = Some(string_list(value));
        match key.value.as_str() {
            "types" => filters.types = list,
            "branches" => filters.branches = list,
            "branches-ignore" => filters.branches_ignore = list,
            "tags" => filters.tags = list,
            "tags-ignore" => filters.tags_ignore = list,
            "paths" => filters.paths = list,
            "paths-ignore" => filters.paths_ignore = list,
            "workflows" => filters.workflows = list,
            _ => {}
        }
    }
    filters
}

fn convert_inputs(node: &Spanned<Node>) -> Vec<Input> {
    entries(node)
        .iter()
        .map(|(name, def)| {
            let mut input = Input {
                name: name.clone(),
                span: def.span,
                ..Input::default()
            };
            for (key, value) in entries(def) {
                match key.value.as_str() {
                    "description" => input.description = string_of(value),
                    "type" => {
                        input.input_type = value
                            .value
                            .as_str()
                            .and_then(InputType::from_name)
                            .map(|t| Spanned::new(t, value.span));
                    }
                    "required" => {
                        if let Node::Bool(b) = value.value {
                            input.required = Some(Spanned::new(b, value.span));
                        }
                    }
                    "default" => input.default = Some(value.clone()),
                    "options" => input.options = string_list(value),
                    _ => {}
                }
            }
            input
        })
        .collect()
}

fn convert_workflow_call(node: &Spanned<Node>) -> WorkflowCall {
    let mut call = WorkflowCall {
        span: node.span,
        ..WorkflowCall::default()
    };
    for (key, value) in entries(node) {
        match key.value.as_str() {
            "inputs" => call.inputs = convert_inputs(value),
            "outputs" => {
                call.outputs = entries(value)
                    .iter()
                    .map(|(name, def)| CallOutput {
                        name: name.clone(),
                        description: def.value.get("description").and_then(string_of),
                        value: def
                            .value
                            .get("value")
                            .and_then(string_of)
                            .unwrap_or_else(|| Spanned::new(String::new(), def.span)),
                    })
                    .collect();
            }
            "secrets" => {
                call.secrets = entries(value)
                    .iter()
                    .map(|(name, def)| CallSecret {
                        name: name.clone(),
                        description: def.value.get("description").and_then(string_of),
                        required: matches!(
                            def.value.get("required").map(|r| &r.value),
                            Some(Node::Bool(true))
                        ),
                    })
                    .collect();
            }
            _ => {}
        }
    }
    call
}

fn convert_permissions(node: &Spanned<Node>) -> Option<Permissions> {
    match &node.value {
        Node::Map(entries) if entries.is_empty() => {
            Some(Permissions::Scopes(Vec::new(), node.span))
        }
        Node::Map(entries) => Some(Permissions::Scopes(
            entries
                .iter()
                .filter_map(|(k, v)| string_of(v).map(|v| (k.clone(), v)))
                .collect(),
            node.span,
        )),
        _ => string_of(node).map(Permissions::All),
    }
}

fn convert_defaults(node: &Spanned<Node>) -> Option<Defaults> {
    let run = node.value.get("run")?;
    Some(Defaults {
        shell: run.value.get("shell").and_then(string_of),
        working_directory: run.value.get("working-directory").and_then(string_of),
    })
}

fn convert_concurrency(node: &Spanned<Node>) -> Option<Concurrency> {
    match &node.value {
        Node::Map(_) => Some(Concurrency {
            group: node
                .value
                .get("group")
                .and_then(string_of)
                .unwrap_or_else(|| Spanned::new(String::new(), node.span)),
            cancel_in_progress: node.value.get("cancel-in-progress").map(dynamic_bool),
        }),
        _ => string_of(node).map(|group| Concurrency {
            group,
            cancel_in_progress: None,
        }),
    }
}

fn convert_job(id: &Spanned<String>, node: &Spanned<Node>) -> Job {
    let mut job = Job {
        id: id.clone(),
        condition: Condition::success(),
        span: node.span,
        ..Job::default()
    };
    // `uses`, `with` and `secrets` make a reusable-workflow call (only with `uses`).
    let mut uses = None;
    let mut with = Vec::new();
    let mut secrets = None;
    for (key, value) in entries(node) {
        match key.value.as_str() {
            "name" => job.name = string_of(value),
            "needs" => job.needs = string_list(value),
            "if" => job.condition = convert_condition(value),
            "strategy" => job.strategy = Some(convert_strategy(value)),
            "concurrency" => job.concurrency = convert_concurrency(value),
            "permissions" => job.permissions = convert_permissions(value),
            "runs-on" => job.runs_on = Some(convert_runs_on(value)),
            "environment" => job.environment = Some(convert_environment(value)),
            "outputs" => job.outputs = Some(string_map(value)),
            "env" => job.env = Some(string_map(value)),
            "defaults" => job.defaults = convert_defaults(value),
            "steps" => {
                job.steps_span = Some(key.span);
                job.steps = convert_steps(value);
            }
            "timeout-minutes" => job.timeout_minutes = Some(dynamic_number(value)),
            "cancel-timeout-minutes" => job.cancel_timeout_minutes = Some(dynamic_number(value)),
            "continue-on-error" => job.continue_on_error = Some(dynamic_bool(value)),
            "container" => job.container = Some(convert_container(value)),
            "services" => {
                job.services = entries(value)
                    .iter()
                    .map(|(name, c)| Service {
                        name: name.clone(),
                        container: convert_container(c),
                    })
                    .collect();
            }
            "uses" => uses = string_of(value),
            "with" => with = entries(value).to_vec(),
            "secrets" => {
                secrets = Some(match &value.value {
                    Node::String(s) if s == "inherit" => CallSecrets::Inherit(value.span),
                    _ => CallSecrets::Map(string_map(value)),
                });
            }
            _ => {}
        }
    }
    job.call = uses.map(|uses| ReusableCall {
        uses,
        with,
        secrets,
    });
    job
}

fn convert_strategy(node: &Spanned<Node>) -> Strategy {
    Strategy {
        matrix: node.value.get("matrix").map(convert_matrix),
        fail_fast: node.value.get("fail-fast").map(dynamic_bool),
        max_parallel: node.value.get("max-parallel").map(dynamic_number),
        span: node.span,
    }
}

fn node_list(node: &Spanned<Node>) -> Dynamic<Vec<Spanned<Node>>> {
    Dynamic {
        raw: node.clone(),
        literal: node.value.as_seq().map(<[Spanned<Node>]>::to_vec),
    }
}

fn convert_matrix(node: &Spanned<Node>) -> Dynamic<Matrix> {
    let literal = node.value.as_map().map(|entries| {
        let mut matrix = Matrix::default();
        for (key, value) in entries {
            match key.value.as_str() {
                "include" => matrix.include = Some(node_list(value)),
                "exclude" => matrix.exclude = Some(node_list(value)),
                _ => matrix.dimensions.push((key.clone(), node_list(value))),
            }
        }
        matrix
    });
    Dynamic {
        raw: node.clone(),
        literal,
    }
}

fn convert_runs_on(node: &Spanned<Node>) -> Dynamic<RunsOn> {
    let literal = if node.value.has_expression() {
        None
    } else {
        match &node.value {
            Node::Map(_) => Some(RunsOn {
                labels: node
                    .value
                    .get("labels")
                    .map(string_list)
                    .unwrap_or_default(),
                group: node.value.get("group").and_then(string_of),
            }),
            _ => Some(RunsOn {
                labels: string_list(node),
                group: None,
            }),
        }
    };
    Dynamic {
        raw: node.clone(),
        literal,
    }
}

fn convert_environment(node: &Spanned<Node>) -> Dynamic<Environment> {
    let literal = match &node.value {
        Node::Map(_) => node
            .value
            .get("name")
            .and_then(string_of)
            .map(|name| Environment {
                name,
                url: node.value.get("url").and_then(string_of),
            }),
        _ => string_of(node).map(|name| Environment { name, url: None }),
    };
    Dynamic {
        raw: node.clone(),
        literal,
    }
}

fn convert_container(node: &Spanned<Node>) -> Dynamic<Container> {
    let literal = match &node.value {
        Node::Map(entries) => {
            let mut c = Container::default();
            let mut has_image = false;
            for (key, value) in entries {
                match key.value.as_str() {
                    "image" => {
                        if let Some(image) = string_of(value) {
                            c.image = image;
                            has_image = true;
                        }
                    }
                    "credentials" => {
                        c.credentials = Some(Credentials {
                            username: value.value.get("username").and_then(string_of),
                            password: value.value.get("password").and_then(string_of),
                        });
                    }
                    "env" => c.env = Some(string_map(value)),
                    "ports" => c.ports = string_list(value),
                    "volumes" => c.volumes = string_list(value),
                    "options" => c.options = string_of(value),
                    "entrypoint" => c.entrypoint = string_of(value),
                    "command" => c.command = string_of(value),
                    _ => {}
                }
            }
            has_image.then_some(c)
        }
        _ => string_of(node).map(|image| Container {
            image,
            ..Container::default()
        }),
    };
    Dynamic {
        raw: node.clone(),
        literal,
    }
}

pub(crate) fn convert_steps(node: &Spanned<Node>) -> Vec<Step> {
    let mut ids = IdBuilder::default();
    let mut steps: Vec<Step> = Vec::new();
    for item in node.value.as_seq().unwrap_or(&[]) {
        if !matches!(item.value, Node::Map(_)) {
            continue;
        }
        let step = convert_step(item);
        if let Some(id) = &step.user_id {
            ids.add_known(&id.value);
        }
        steps.push(step);
    }
    for step in &mut steps {
        if step.user_id.is_some() {
            continue;
        }
        let base = match &step.action {
            StepAction::Uses { uses, .. } => action_step_id(&uses.value),
            _ => String::new(),
        };
        let base = if base.is_empty() {
            "run".to_owned()
        } else {
            base
        };
        step.id = ids.generate(&format!("__{base}"));
    }
    steps
}

fn convert_step(node: &Spanned<Node>) -> Step {
    let mut step = Step {
        condition: Condition::success(),
        span: node.span,
        ..Step::default()
    };
    let mut run = None;
    let mut uses = None;
    let mut shell = None;
    let mut working_directory = None;
    let mut with = None;
    for (key, value) in entries(node) {
        match key.value.as_str() {
            "id" => step.user_id = string_of(value),
            "name" => step.name = string_of(value),
            "if" => step.condition = convert_condition(value),
            "run" => run = string_of(value),
            "uses" => uses = string_of(value),
            "shell" => shell = string_of(value),
            "working-directory" => working_directory = string_of(value),
            "with" => with = Some(string_map(value)),
            "env" => step.env = Some(string_map(value)),
            "continue-on-error" => step.continue_on_error = Some(dynamic_bool(value)),
            "timeout-minutes" => step.timeout_minutes = Some(dynamic_number(value)),
            _ => {}
        }
    }
    if let Some(id) = &step.user_id {
        step.id = id.value.clone();
    }
    step.action = match (run, uses) {
        (Some(run), _) => {
            let first = run
                .value
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            step.default_name = format!("Run {first}");
            StepAction::Run {
                run,
                shell,
                working_directory,
            }
        }
        (None, Some(uses)) => {
            step.default_name = uses.value.clone();
            StepAction::Uses { uses, with }
        }
        (None, None) => StepAction::Invalid,
    };
    step
}

/// The id segment GitHub derives from `uses:` for a step without `id:`: `owner/repo` for an
/// action of a repository, `self` for a local action, the image for `docker://`.
fn action_step_id(uses: &str) -> String {
    if let Some(image) = uses.strip_prefix("docker://") {
        return image.to_owned();
    }
    if uses.starts_with("./") || uses.starts_with(".\\") || uses.starts_with("$/") {
        return "self".to_owned();
    }
    let parts: Vec<&str> = uses.split('@').collect();
    let [path, git_ref] = parts.as_slice() else {
        return String::new();
    };
    let segments: Vec<&str> = path.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    if segments.len() >= 2 && !git_ref.is_empty() {
        format!("{}/{}", segments[0], segments[1])
    } else {
        String::new()
    }
}

/// Generates unique step ids the way GitHub does (`__run`, `__run_2`, ...), avoiding the ids
/// written in the file.
#[derive(Default)]
struct IdBuilder {
    taken: std::collections::HashSet<String>,
}

const MAX_ID_LENGTH: usize = 100;

impl IdBuilder {
    fn add_known(&mut self, id: &str) {
        self.taken.insert(id.to_owned());
    }

    fn generate(&mut self, segment: &str) -> String {
        let mut name = String::new();
        let mut chars = segment.chars().peekable();
        if let Some(&first) = chars.peek()
            && (first.is_ascii_digit() || first == '-')
        {
            name.push('_');
        }
        for c in chars {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                name.push(c);
            } else {
                name.push('_');
            }
        }
        if name.is_empty() {
            name.push_str("job");
        }
        for attempt in 1..1000 {
            let suffix = if attempt == 1 {
                String::new()
            } else {
                format!("_{attempt}")
            };
            let keep = name
                .chars()
                .take(MAX_ID_LENGTH - suffix.len())
                .collect::<String>();
            let candidate = format!("{keep}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
        format!("{name}_{}", self.taken.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_step_ids() {
        assert_eq!(action_step_id("actions/checkout@v4"), "actions/checkout");
        assert_eq!(action_step_id("docker://alpine:3"), "alpine:3");
        assert_eq!(action_step_id("./local"), "self");
        assert_eq!(action_step_id("actions/aws/ec2@main"), "actions/aws");
        assert_eq!(action_step_id("badrepo"), "");
    }

    #[test]
    fn generated_ids_are_unique() {
        let mut ids = IdBuilder::default();
        ids.add_known("__run_2");
        assert_eq!(ids.generate("__run"), "__run");
        assert_eq!(ids.generate("__run"), "__run_3");
        assert_eq!(ids.generate("__actions/checkout"), "__actions_checkout");
    }
}
