//! The typed model of a workflow file, with the location of everything a diagnostic may point
//! at. Built by [`crate::parse::parse_workflow`].
//!
//! Values that may contain `${{ }}` are kept as template strings (the runner evaluates them as
//! steps start). Fields GitHub evaluates at run time and that may be either a literal or an
//! expression (`timeout-minutes`, `continue-on-error`, `runs-on`, `container`, the matrix...)
//! are a [`Dynamic`]: the raw YAML node plus a typed view when the value is literal.

use crate::span::{Span, Spanned};
use crate::trigger::Trigger;
use crate::yaml::Node;

/// A whole workflow file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Workflow {
    /// The file name given to the parser (for example `.github/workflows/ci.yml`).
    pub file: String,
    pub name: Option<Spanned<String>>,
    /// `run-name`, a template.
    pub run_name: Option<Spanned<String>>,
    pub on: On,
    pub permissions: Option<Permissions>,
    pub env: Option<StringMap>,
    pub defaults: Option<Defaults>,
    pub concurrency: Option<Concurrency>,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
    /// The span of the `jobs:` value; `None` when there is no `jobs:`.
    pub jobs_span: Option<Span>,
}

impl Workflow {
    /// The job with this id.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id.value == id)
    }

    /// The name GitHub shows: `name:`, or the file path.
    pub fn display_name(&self) -> &str {
        self.name
            .as_ref()
            .map_or(self.file.as_str(), |n| n.value.as_str())
    }
}

/// A literal-or-expression value: the raw node (evaluated at run time when it holds `${{ }}`)
/// and the typed value when it is a literal of the expected type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dynamic<T> {
    pub raw: Spanned<Node>,
    pub literal: Option<T>,
}

impl<T> Dynamic<T> {
    pub fn span(&self) -> Span {
        self.raw.span
    }

    /// Whether the value contains `${{ }}` (so `literal` is `None` until run time).
    pub fn is_expression(&self) -> bool {
        self.raw.value.has_expression()
    }
}

/// A mapping of names to template strings (`env`, `with`, `outputs`, `secrets`), or one
/// expression producing the whole mapping (`env: ${{ fromJSON(...) }}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringMap {
    pub entries: Vec<(Spanned<String>, Spanned<String>)>,
    /// Set when the whole value is one `${{ }}` template instead of a mapping.
    pub expression: Option<Spanned<String>>,
    pub span: Span,
}

impl StringMap {
    pub fn get(&self, key: &str) -> Option<&Spanned<String>> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.expression.is_none()
    }
}

/// Everything under `on:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct On {
    /// Every event, in file order, with its filters. Includes `schedule`,
    /// `workflow_dispatch` and `workflow_call` (their details are in the fields below).
    pub triggers: Vec<Trigger>,
    /// `on.schedule[*].cron`, 5-field POSIX cron patterns (UTC unless `timezone` is set).
    pub schedule: Vec<Schedule>,
    pub workflow_dispatch: Option<WorkflowDispatch>,
    pub workflow_call: Option<WorkflowCall>,
    pub span: Span,
}

impl On {
    pub fn trigger(&self, event: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.event.value == event)
    }

    /// Whether some event is filtered by changed paths (`paths` or `paths-ignore`): only then
    /// do an event's changed paths matter to this workflow.
    pub fn filters_paths(&self) -> bool {
        self.triggers
            .iter()
            .any(|t| t.filters.paths.is_some() || t.filters.paths_ignore.is_some())
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub cron: Spanned<String>,
    /// IANA time zone name (`timezone:`), if given.
    pub timezone: Option<Spanned<String>>,
}

/// The type of a `workflow_dispatch` or `workflow_call` input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputType {
    #[default]
    String,
    Boolean,
    Number,
    Choice,
    Environment,
}

impl InputType {
    pub fn from_name(name: &str) -> Option<InputType> {
        Some(match name {
            "string" => InputType::String,
            "boolean" => InputType::Boolean,
            "number" => InputType::Number,
            "choice" => InputType::Choice,
            "environment" => InputType::Environment,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Boolean => "boolean",
            InputType::Number => "number",
            InputType::Choice => "choice",
            InputType::Environment => "environment",
        }
    }
}

/// One input of `workflow_dispatch` or `workflow_call`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// `type:`; `None` when absent (dispatch inputs default to `string`).
    pub input_type: Option<Spanned<InputType>>,
    pub required: Option<Spanned<bool>>,
    /// `default:` as written (a string, boolean or number).
    pub default: Option<Spanned<Node>>,
    /// `options:` of a `choice` input.
    pub options: Vec<Spanned<String>>,
    pub span: Span,
}

impl Input {
    /// The declared type, `string` when absent.
    pub fn kind(&self) -> InputType {
        self.input_type
            .as_ref()
            .map_or(InputType::String, |t| t.value)
    }

    pub fn is_required(&self) -> bool {
        self.required.as_ref().is_some_and(|r| r.value)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowDispatch {
    pub inputs: Vec<Input>,
    pub span: Span,
}

/// `on.workflow_call`: the interface of a reusable workflow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowCall {
    pub inputs: Vec<Input>,
    pub outputs: Vec<CallOutput>,
    pub secrets: Vec<CallSecret>,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOutput {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// `value:`, a template over the `jobs` context.
    pub value: Spanned<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallSecret {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    pub required: bool,
}

/// `permissions:`, either a shorthand for every scope or per-scope levels.
#[derive(Clone, Debug, PartialEq)]
pub enum Permissions {
    /// `read-all`, `write-all` or `{}` (written as an empty mapping: no permission at all).
    All(Spanned<String>),
    /// `scope: read | write | none`, in file order.
    Scopes(Vec<(Spanned<String>, Spanned<String>)>, Span),
}

/// `defaults.run`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defaults {
    pub shell: Option<Spanned<String>>,
    pub working_directory: Option<Spanned<String>>,
}

/// `concurrency:` (a string is the group).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Concurrency {
    /// Template.
    pub group: Spanned<String>,
    pub cancel_in_progress: Option<Dynamic<bool>>,
}

/// An `if:` condition as written and as GitHub evaluates it: `${{ }}` around the whole value
/// removed, a value without status function wrapped in `success() && (...)`, a value mixing
/// text and `${{ }}` turned into a `format(...)` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    /// The `if:` value as written; `None` when there is no `if:`.
    pub raw: Option<Spanned<String>>,
    /// The expression to evaluate (`success()` when there is no `if:`).
    pub expression: String,
}

impl Condition {
    /// The condition used when there is no `if:`.
    pub fn success() -> Condition {
        Condition {
            raw: None,
            expression: "success()".to_owned(),
        }
    }

    pub fn span(&self) -> Option<Span> {
        self.raw.as_ref().map(|r| r.span)
    }
}

/// One job under `jobs:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    pub id: Spanned<String>,
    /// `name:` (a template).
    pub name: Option<Spanned<String>>,
    /// `needs:` in order. A single string is a one-item list.
    pub needs: Vec<Spanned<String>>,
    pub condition: Condition,
    pub strategy: Option<Strategy>,
    pub concurrency: Option<Concurrency>,
    pub permissions: Option<Permissions>,
    /// `runs-on:`; `None` for a reusable-workflow call (and when missing, which is an error).
    pub runs_on: Option<Dynamic<RunsOn>>,
    pub environment: Option<Dynamic<Environment>>,
    pub outputs: Option<StringMap>,
    pub env: Option<StringMap>,
    pub defaults: Option<Defaults>,
    pub steps: Vec<Step>,
    /// The span of the `steps:` key, when present.
    pub steps_span: Option<Span>,
    pub timeout_minutes: Option<Dynamic<f64>>,
    pub cancel_timeout_minutes: Option<Dynamic<f64>>,
    pub continue_on_error: Option<Dynamic<bool>>,
    pub container: Option<Dynamic<Container>>,
    pub services: Vec<Service>,
    /// Set when the job calls a reusable workflow (`uses:`).
    pub call: Option<ReusableCall>,
    /// The span of the job's mapping.
    pub span: Span,
}

impl Job {
    /// The name GitHub shows: `name:`, or the job id.
    pub fn display_name(&self) -> &str {
        match &self.name {
            Some(n) if !n.value.is_empty() => &n.value,
            _ => &self.id.value,
        }
    }

    pub fn is_call(&self) -> bool {
        self.call.is_some()
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// `strategy:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strategy {
    /// `strategy.matrix`; the literal view is set when the matrix contains no expression
    /// in its structure (values may still hold `${{ }}` strings).
    pub matrix: Option<Dynamic<Matrix>>,
    pub fail_fast: Option<Dynamic<bool>>,
    pub max_parallel: Option<Dynamic<f64>>,
    pub span: Span,
}

/// A literal `strategy.matrix`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matrix {
    /// Each dimension and its values, in file order. A dimension given as one `${{ }}`
    /// expression keeps the raw node only.
    pub dimensions: Vec<(Spanned<String>, MatrixValues)>,
    /// `include:` entries (each a mapping), or an expression.
    pub include: Option<MatrixValues>,
    pub exclude: Option<MatrixValues>,
}

/// A matrix vector or `include`/`exclude` list: a literal list, or an expression.
pub type MatrixValues = Dynamic<Vec<Spanned<Node>>>;

/// `runs-on:` as labels and an optional runner group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunsOn {
    pub labels: Vec<Spanned<String>>,
    pub group: Option<Spanned<String>>,
}

/// `environment:` (a string is the name).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment {
    pub name: Spanned<String>,
    pub url: Option<Spanned<String>>,
}

/// A job or service container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    pub image: Spanned<String>,
    pub credentials: Option<Credentials>,
    pub env: Option<StringMap>,
    pub ports: Vec<Spanned<String>>,
    pub volumes: Vec<Spanned<String>>,
    pub options: Option<Spanned<String>>,
    /// Service containers only.
    pub entrypoint: Option<Spanned<String>>,
    /// Service containers only.
    pub command: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credentials {
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
}

/// One entry of `services:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub name: Spanned<String>,
    pub container: Dynamic<Container>,
}

/// A job that runs a reusable workflow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReusableCall {
    /// `uses:`: `owner/repo/.github/workflows/file.yml@ref` or `./.github/workflows/file.yml`.
    pub uses: Spanned<String>,
    /// `with:`: inputs, each a string, boolean or number (strings may hold `${{ }}`).
    pub with: Vec<(Spanned<String>, Spanned<Node>)>,
    pub secrets: Option<CallSecrets>,
}

/// `secrets:` of a reusable-workflow call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallSecrets {
    /// `secrets: inherit`.
    Inherit(Span),
    Map(StringMap),
}

/// One step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The id: `id:` when given, otherwise the one GitHub generates (`__run`, `__run_2`,
    /// `__actions_checkout`, ...).
    pub id: String,
    /// `id:` as written.
    pub user_id: Option<Spanned<String>>,
    /// `name:` (a template).
    pub name: Option<Spanned<String>>,
    /// The name GitHub shows for a step without `name:`: `Run <first line of run>` or the
    /// `uses` value.
    pub default_name: String,
    pub condition: Condition,
    pub action: StepAction,
    pub env: Option<StringMap>,
    pub continue_on_error: Option<Dynamic<bool>>,
    pub timeout_minutes: Option<Dynamic<f64>>,
    /// The step's mapping.
    pub span: Span,
}

impl Step {
    /// `name:` or the default name.
    pub fn display_name(&self) -> &str {
        match &self.name {
            Some(n) if !n.value.is_empty() => &n.value,
            _ => &self.default_name,
        }
    }

    pub fn run(&self) -> Option<&Spanned<String>> {
        match &self.action {
            StepAction::Run { run, .. } => Some(run),
            _ => None,
        }
    }

    pub fn uses(&self) -> Option<&Spanned<String>> {
        match &self.action {
            StepAction::Uses { uses, .. } => Some(uses),
            _ => None,
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StepAction {
    Run {
        /// The script, a template.
        run: Spanned<String>,
        shell: Option<Spanned<String>>,
        working_directory: Option<Spanned<String>>,
    },
    Uses {
        /// `owner/repo@ref`, `./path` or `docker://image`.
        uses: Spanned<String>,
        with: Option<StringMap>,
    },
    /// Neither `run` nor `uses` (an error has been reported).
    #[default]
    Invalid,
}
