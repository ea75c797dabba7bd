//! Job specs: what the planner hands to a runner. Templates (`${{ }}`) inside are still
//! unevaluated; the runner evaluates them as steps start, because step outputs, env and the job
//! status change during a job.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The workflow a job comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRef {
    /// Path relative to the repository root (`.github/workflows/ci.yml`).
    pub file: String,
    /// The workflow's `name`, or its file path when unnamed (as GitHub shows it).
    pub name: String,
}

/// One job to run: a job of a workflow, or one leg of its matrix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Unique within a run: the job id, plus the leg number for matrix legs (`test.2`), plus
    /// the caller's id for jobs of a reusable workflow (`call/build`).
    pub key: String,
    /// The job's id in its workflow (`jobs.<id>`).
    pub job_id: String,
    /// Display name with matrix values, as GitHub shows it: `test (ubuntu-latest, 18)`.
    pub name: String,
    pub workflow: WorkflowRef,
    /// `runs-on` labels, evaluated.
    pub runs_on: Vec<String>,
    /// Values of the `github` context known at planning (event, ref, sha, repository...).
    pub github: Value,
    /// The `inputs` context (workflow_dispatch or workflow_call inputs).
    pub inputs: Value,
    /// The `vars` context.
    pub vars: Value,
    /// The `needs` context: results and outputs of the jobs this one needs.
    pub needs: Value,
    /// This leg's matrix values; `null` when the job has no matrix.
    pub matrix: Value,
    pub strategy: StrategyContext,
    /// Workflow-level `env`, templates in order.
    pub workflow_env: IndexMap<String, String>,
    /// Job-level `env`, templates in order.
    pub env: IndexMap<String, String>,
    pub defaults: RunDefaults,
    pub steps: Vec<StepSpec>,
    /// `jobs.<id>.outputs`: name to template.
    pub outputs: IndexMap<String, String>,
    /// Evaluated `timeout-minutes`.
    pub timeout_minutes: f64,
    /// Evaluated `continue-on-error`.
    pub continue_on_error: bool,
    /// Names of the secrets this job may read (values travel separately, never in a spec).
    pub secret_names: Vec<String>,
    pub container: Option<ContainerSpec>,
    pub services: IndexMap<String, ServiceSpec>,
}

/// The `strategy` context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyContext {
    pub fail_fast: bool,
    pub job_index: u32,
    pub job_total: u32,
    pub max_parallel: u32,
}

impl Default for StrategyContext {
    fn default() -> Self {
        StrategyContext {
            fail_fast: true,
            job_index: 0,
            job_total: 1,
            max_parallel: 1,
        }
    }
}

/// `defaults.run`, merged (job over workflow).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunDefaults {
    pub shell: Option<String>,
    pub working_directory: Option<String>,
}

/// One step of a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The step's `id`, or the id GitHub generates for it (`__run`, `__run_2`, ...).
    pub id: String,
    /// Whether `id` was written by the user (only those are meant to be referenced).
    pub explicit_id: bool,
    /// `name` template; `None` when unnamed.
    pub name: Option<String>,
    /// The name shown when `name` is absent: `Run echo hi`, `actions/checkout@v4`.
    pub default_name: String,
    /// The normalised `if` expression, without `${{ }}` (`success()` when absent).
    pub condition: String,
    pub kind: StepKind,
    /// Step `env`, templates in order.
    pub env: IndexMap<String, String>,
    /// `continue-on-error` template (`"false"` when absent).
    pub continue_on_error: String,
    /// `timeout-minutes` template, when given.
    pub timeout_minutes: Option<String>,
    /// `working-directory` template, when given.
    pub working_directory: Option<String>,
    /// `shell`, when given.
    pub shell: Option<String>,
    /// Line of the step in its file, for messages.
    pub line: u32,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum StepKind {
    /// `run:` a script template.
    Run { script: String },
    /// `uses:` an action with its `with:` inputs (templates).
    Uses {
        uses: String,
        with: IndexMap<String, String>,
    },
}

impl Default for StepKind {
    fn default() -> Self {
        StepKind::Run {
            script: String::new(),
        }
    }
}

/// `jobs.<id>.container`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub image: String,
    pub env: IndexMap<String, String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub options: Option<String>,
    pub credentials: Option<Value>,
}

/// One entry of `jobs.<id>.services`.
pub type ServiceSpec = ContainerSpec;
