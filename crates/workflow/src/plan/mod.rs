//! Planning: an event to the workflows and jobs it starts ([`plan_run`]), and the state machine
//! of one run ([`RunGraph`]) that `gantry run` and the server drive.
//!
//! Pure: no processes, no clock, no network. Values that only exist at run time (needs'
//! outputs, a leg's conclusion) are handed in by the driver.
//!
//! # Planning an event
//!
//! [`plan_run`] decides for every workflow whether the event starts it (and why not), types the
//! `workflow_dispatch` inputs, evaluates `run-name`, builds the `github` and `inputs` contexts,
//! and lists the jobs in needs order with their statically known matrix legs and skip reasons.
//! Jobs that call a reusable workflow of the same repository (`uses: ./.github/workflows/x.yml`)
//! are expanded as GitHub does: the called jobs become jobs of the run, keyed `call/build`.
//!
//! `workflow_call` is not an event GitHub sends, and a callable workflow is never started by
//! another event unless it declares that event too. The event name `workflow_call` is the one
//! exception: it runs every workflow with `on: workflow_call` directly, as if a caller called it
//! with `secrets: inherit` and with [`RunContext::inputs`] as its `with:` (typed against
//! `on.workflow_call.inputs`). That is how `gantry run --event workflow_call --payload
//! event.json` tries a reusable workflow locally, taking the payload's `inputs`.
//!
//! # Templates in job-level values
//!
//! Values evaluated for a job (`strategy.matrix`, `runs-on`, `container`, a call's `with:`...)
//! follow GitHub's template rules, not only "replace each `${{ }}`":
//! - a string that is one expression keeps the expression's type (`${{ fromJSON(x) }}` gives a
//!   list or a mapping);
//! - a mapping key holding `${{ }}` is evaluated to a string
//!   (`${{ needs.prepare.outputs.key }}: [a, b]` is a matrix vector named by a job output);
//! - a key that is exactly `${{ insert }}` merges the mapping it maps to (written out, or an
//!   expression evaluating to a mapping) into the enclosing mapping;
//! - a sequence item that is one expression evaluating to a sequence is spliced into the
//!   sequence (`[a, ${{ fromJSON('["b", "c"]') }}]` is three items);
//! - a key from an expression or an `insert` may not repeat a key of the mapping.
//!
//! A matrix whose keys or values use a context only known during the run (`needs`) is expanded
//! when its job starts.
//!
//! ```
//! use gantry_workflow::parse_workflow;
//! use gantry_workflow::plan::{RunContext, plan_run};
//! use gantry_workflow::trigger::Event;
//!
//! let yaml = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n";
//! let workflow = parse_workflow(".github/workflows/ci.yml", yaml).workflow.expect("parses");
//! let ctx = RunContext::new(Event {
//!     name: "push".into(),
//!     git_ref: Some("refs/heads/main".into()),
//!     ..Event::default()
//! });
//! let plan = plan_run(&[workflow], &ctx);
//! assert!(plan.workflows[0].is_runnable());
//! assert_eq!(plan.workflows[0].jobs[0].key.as_str(), "build");
//! ```
//!
//! # Driving a run
//!
//! A [`RunGraph`] is built from one runnable [`WorkflowPlan`] and the parsed workflows (the
//! planned one and those it calls). The driver loop asks for [`Action`]s, performs them, and
//! reports each leg's end with [`RunGraph::finish`]:
//!
//! ```
//! # use gantry_workflow::parse_workflow;
//! # use gantry_workflow::plan::{RunContext, plan_run};
//! # use gantry_workflow::trigger::Event;
//! use gantry_protocol::Conclusion;
//! use gantry_workflow::plan::{Action, RunGraph};
//! use indexmap::IndexMap;
//!
//! # let yaml = "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    steps: [run: b]\n";
//! # let workflow = parse_workflow(".github/workflows/ci.yml", yaml).workflow.expect("parses");
//! # let ctx = RunContext::new(Event { name: "push".into(), git_ref: Some("refs/heads/main".into()), ..Event::default() });
//! # let workflows = vec![workflow];
//! let plan = plan_run(&workflows, &ctx);
//! let mut graph = RunGraph::new(&plan.workflows[0], &workflows)?;
//! let mut running = Vec::new(); // (key, leg) of the legs the driver started
//! loop {
//!     for action in graph.next_actions() {
//!         match action {
//!             // Give `start.spec` to a runner, with the secret values `start.secrets` selects.
//!             Action::StartLeg(start) => running.push((start.key, start.leg)),
//!             // Stop that runner; it still reports its end through `finish` (as cancelled).
//!             Action::CancelLeg { .. } => {}
//!             // Print them: these jobs are over without running.
//!             Action::JobSkipped { .. } | Action::JobFailed { .. } | Action::JobFinished { .. } => {}
//!         }
//!     }
//!     if graph.is_finished() {
//!         break;
//!     }
//!     // Wait until one running leg ends (here: at once, successfully, with no outputs).
//!     let (key, leg) = running.remove(0);
//!     graph.finish(&key, leg, Conclusion::Success, IndexMap::new());
//! }
//! assert_eq!(graph.conclusion(), Some(Conclusion::Success));
//! # Ok::<(), gantry_workflow::plan::GraphError>(())
//! ```
//!
//! On Ctrl-C (or a cancel request) call [`RunGraph::cancel_run`]: the next actions cancel the
//! running legs, and jobs not yet started are cancelled unless their `if:` asks to run anyway
//! (`always()`, `cancelled()`).
//!
//! [`RunGraph::ready`] and [`RunGraph::instantiate`] expose the steps `next_actions` takes
//! (which jobs may start; what a job becomes when evaluated now) for inspection and tests; they
//! change nothing.
//!
//! # Persisting a run
//!
//! A run graph is a pure function of its plan and its journal: the inputs it was given
//! ([`GraphInput`]: each `finish` and `cancel_run`, in order). A driver that must survive a
//! restart (the server) stores, per run, the [`RunContext`] it planned with, the workflow
//! sources at the commit, and the journal, appending each input in the same transaction as the
//! actions the graph answered with. To rebuild the graph: parse the sources, [`plan_run`] with
//! the stored context, and [`RunGraph::replay`] the journal into the same workflow's plan.
//! `RunContext`, [`trigger::Event`](crate::trigger::Event), [`JobKey`], [`GraphInput`],
//! [`Action`] and [`SecretScope`] are serde types for that purpose.
//!
//! ```
//! # use gantry_workflow::parse_workflow;
//! # use gantry_workflow::plan::{RunContext, plan_run};
//! # use gantry_workflow::trigger::Event;
//! use gantry_protocol::Conclusion;
//! use gantry_workflow::plan::{GraphInput, RunGraph};
//!
//! # let yaml = "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    steps: [run: b]\n";
//! # let workflows = vec![parse_workflow(".github/workflows/ci.yml", yaml).workflow.expect("parses")];
//! # let ctx = RunContext::new(Event { name: "push".into(), git_ref: Some("refs/heads/main".into()), ..Event::default() });
//! let plan = plan_run(&workflows, &ctx);
//! let mut graph = RunGraph::new(&plan.workflows[0], &workflows)?;
//! let mut journal = Vec::new();
//! graph.next_actions(); // starts `a`
//! let input = GraphInput::Finish {
//!     key: "a".into(),
//!     leg: 0,
//!     conclusion: Conclusion::Success,
//!     outputs: Default::default(),
//! };
//! graph.apply(&input);
//! journal.push(input); // stored with the run
//!
//! // After a restart: the same context and sources, planned again, and the journal.
//! let stored: RunContext = serde_json::from_str(&serde_json::to_string(&ctx)?)?;
//! let plan = plan_run(&workflows, &stored);
//! let mut replayed = RunGraph::replay(&plan.workflows[0], &workflows, &journal)?;
//! assert_eq!(replayed.next_actions(), graph.next_actions()); // `a` done, start `b`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The rules that make this hold (see [`RunGraph::replay`] for the details):
//! - Nothing in planning or in a graph depends on a clock, randomness or hash-map iteration
//!   order; jobs are kept in needs order and legs in matrix order.
//! - An input first takes the steps [`RunGraph::next_actions`] would take (queueing their
//!   actions), then applies. So the state after a series of inputs does not depend on how often
//!   the driver asked for actions in between; only the actions it was handed do.
//! - An input that does not apply (a leg not running, an unknown key, a second `cancel_run`)
//!   changes nothing.
//!
//! [`RunGraph::replay`] asks for actions before each input, as a driver that asks after every
//! input does, so the replayed graph's next `next_actions()` returns what the original's did
//! after the last input. A driver that performed those actions before it stopped must treat
//! them as already done (the leg is already queued, the job already marked). The same version
//! of Gantry must replay a journal: a change to the planning rules may change a replayed run.

mod context;
mod evaluation;
mod graph;
mod inputs;
mod instance;
mod journal;
mod planner;
mod secrets;

#[cfg(test)]
mod tests;

pub use context::RunContext;
pub use graph::{Action, GraphError, LegStart, RunGraph};
pub use inputs::{InputError, InputSource, type_inputs};
pub use instance::{CallLeg, JobInstance};
pub use journal::GraphInput;
pub use planner::{
    MAX_CALL_DEPTH, Plan, PlannedJob, PlannedJobKind, PlannedLeg, PlannedMatrix, WorkflowPlan,
    plan_run,
};
pub use secrets::SecretScope;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's key, unique within a run: the job id (`build`), prefixed by the calling job for jobs
/// of a reusable workflow (`call/build`; `call (linux)/build` for a leg of a matrix over a
/// call).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobKey(String);

impl JobKey {
    pub fn new(key: impl Into<String>) -> JobKey {
        JobKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of a job `id` of a workflow called by the job `self`.
    pub fn child(&self, id: &str) -> JobKey {
        JobKey(format!("{}/{id}", self.0))
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobKey {
    fn from(key: &str) -> JobKey {
        JobKey(key.to_owned())
    }
}
