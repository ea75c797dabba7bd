//! [`RunGraph`]: the state of one run of one workflow, as a pure state machine. The driver
//! (`gantry run`, the server's scheduler) asks it what to do next ([`RunGraph::next_actions`])
//! and tells it how legs ended ([`RunGraph::finish`]). See the [module docs](super) for the
//! driver loop, and [`super::GraphInput`] for journaling the inputs and replaying them.
//!
//! Inputs ([`RunGraph::finish`], [`RunGraph::cancel_run`]) first take every step
//! [`RunGraph::next_actions`] would take now and queue its actions, then apply: the state after a
//! series of inputs is the same however often the driver asked for actions in between.
//!
//! Rules, as GitHub applies them:
//! - A job is considered once every job it needs has a result. Its `if:` (default
//!   `success()`) is evaluated then: `success()` means every job above it in the needs graph
//!   succeeded and the run is not cancelled, `failure()` that one of them failed,
//!   `cancelled()` that the run is cancelled, `always()` is true; `success('a', ...)` and
//!   `failure('a', ...)` look at the named needs only. A false `if:` skips the job (its result
//!   is `skipped`, or `cancelled` in a cancelled run).
//! - A job's matrix, name, `runs-on`, `timeout-minutes`... are evaluated at that moment, with
//!   the needs' results and outputs.
//! - Legs start in order, at most `max-parallel` at once. With fail-fast (the default), a
//!   failing leg (without `continue-on-error`) cancels the running legs and the legs not
//!   started of the same job.
//! - A job's result: `failure` if a leg failed (unless that leg has `continue-on-error`),
//!   else `cancelled` if a leg was cancelled, else `success`. Its outputs: per output, the
//!   value of the last leg to finish that set it (non-empty).
//! - A job calling a reusable workflow runs the called jobs (one copy per matrix leg) as jobs
//!   of the run; its result aggregates theirs and its outputs are the called workflow's
//!   `on.workflow_call.outputs`, evaluated over their results and outputs.
//! - Cancelling the run cancels running legs, except of jobs whose `if:` is still true in a
//!   cancelled run (`always()`, `cancelled()`); jobs not started are then decided by their
//!   `if:` as usual.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use gantry_expr::{Contexts, Value};
use gantry_protocol::{Conclusion, JobSpec};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use super::JobKey;
use super::evaluation::{CALL_OUTPUT, StatusView, evaluate_condition, evaluate_string};
use super::instance::{self, CallLeg, JobInstance, JobRequest, JobScope, job_contexts};
use super::planner::{WorkflowPlan, needs_order};
use super::secrets::SecretScope;
use crate::model::Workflow;

/// Why a [`RunGraph`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The plan is not triggered or has errors.
    #[error("workflow {file} cannot run: {reason}")]
    NotRunnable { file: String, reason: String },
    /// A workflow the plan refers to is not among those given.
    #[error("workflow {file} is not among the workflows given to the run graph")]
    MissingWorkflow { file: String },
}

/// A leg to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegStart {
    pub key: JobKey,
    /// The leg's index in its job (0 for a job without matrix; `strategy.job-index`).
    pub leg: usize,
    /// What the runner executes.
    pub spec: JobSpec,
    /// Which secret values the runner gets: `secrets.resolve(&run_secrets)`.
    pub secrets: SecretScope,
}

/// Something the driver must do, or be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Start this leg on a runner; report its end with [`RunGraph::finish`].
    StartLeg(Box<LegStart>),
    /// Stop this running leg (fail-fast or a cancelled run); report its end with
    /// [`RunGraph::finish`] (normally as [`Conclusion::Cancelled`]).
    CancelLeg {
        key: JobKey,
        leg: usize,
        reason: String,
    },
    /// The job will not run. Its result is `skipped` (or `cancelled` when the run was).
    JobSkipped {
        key: JobKey,
        name: String,
        reason: String,
    },
    /// The job could not start (bad expression, bad matrix, uncallable workflow). Its result is
    /// `failure`.
    JobFailed {
        key: JobKey,
        name: String,
        reason: String,
    },
    /// Every leg of the job (or every job of a called workflow) has ended; this is the job's
    /// result as its dependents see it.
    JobFinished {
        key: JobKey,
        name: String,
        conclusion: Conclusion,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegState {
    Waiting,
    Running,
    /// A cancel was requested; the driver has not reported the end yet.
    Cancelling,
    Done(Conclusion),
}

impl LegState {
    fn is_active(self) -> bool {
        matches!(self, LegState::Running | LegState::Cancelling)
    }
}

#[derive(Clone, Debug)]
struct RunLeg {
    /// Taken when the leg starts.
    spec: Option<JobSpec>,
    continue_on_error: bool,
    state: LegState,
}

#[derive(Clone, Debug)]
struct CallSlot {
    leg: CallLeg,
    /// Index of the called workflow.
    workflow: usize,
    state: LegState,
    children: Vec<usize>,
}

#[derive(Clone, Debug)]
enum Legs {
    Run {
        legs: Vec<RunLeg>,
        secrets: SecretScope,
    },
    Call {
        legs: Vec<CallSlot>,
    },
}

#[derive(Clone, Debug)]
enum NodeState {
    Pending,
    Running {
        legs: Legs,
        fail_fast: bool,
        max_parallel: usize,
    },
    Done(Conclusion),
}

#[derive(Clone, Debug)]
struct Node {
    key: JobKey,
    /// Index into `RunGraph::workflows`.
    workflow: usize,
    /// Index into that workflow's jobs.
    job: usize,
    scope: Arc<JobScope>,
    /// Direct needs (node indices).
    needs: Vec<usize>,
    /// The display name before the job is evaluated (`name:` as written, or the id).
    name: String,
    state: NodeState,
    outputs: IndexMap<String, String>,
    /// The kinds of results of the jobs above this one, set when it starts.
    above: Vec<Conclusion>,
    /// Jobs that need this one.
    dependents: Vec<usize>,
    /// How many of `needs` have no result yet.
    waiting: usize,
}

/// The state of one run of one workflow.
#[derive(Clone, Debug)]
pub struct RunGraph {
    workflows: Vec<Workflow>,
    nodes: Vec<Node>,
    index: HashMap<JobKey, usize>,
    cancelled: bool,
    /// Actions produced by `finish` and `cancel_run`, handed out by the next `next_actions`.
    queued: Vec<Action>,
    /// Pending jobs whose needs all have a result, in node order.
    ready: BTreeSet<usize>,
    /// Jobs with legs (or call legs) not all done, in node order.
    running: BTreeSet<usize>,
}

impl RunGraph {
    /// A graph for a runnable plan. `workflows` must hold the planned workflow and every
    /// workflow it calls (matched by file).
    pub fn new(plan: &WorkflowPlan, workflows: &[Workflow]) -> Result<RunGraph, GraphError> {
        if !plan.is_runnable() {
            let reason = if plan.triggered {
                plan.errors.join("; ")
            } else {
                plan.reason.clone()
            };
            return Err(GraphError::NotRunnable {
                file: plan.file.clone(),
                reason,
            });
        }
        let root = workflows
            .iter()
            .position(|w| w.file == plan.file)
            .ok_or_else(|| GraphError::MissingWorkflow {
                file: plan.file.clone(),
            })?;
        let mut graph = RunGraph {
            workflows: workflows.to_vec(),
            nodes: Vec::new(),
            index: HashMap::new(),
            cancelled: false,
            queued: Vec::new(),
            ready: BTreeSet::new(),
            running: BTreeSet::new(),
        };
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
        graph
            .add_jobs(root, scope)
            .map_err(|reason| GraphError::NotRunnable {
                file: plan.file.clone(),
                reason,
            })?;
        Ok(graph)
    }

    /// Adds the jobs of workflow `workflow` in `scope`, in needs order; returns their indices.
    fn add_jobs(&mut self, workflow: usize, scope: JobScope) -> Result<Vec<usize>, String> {
        let wf = &self.workflows[workflow];
        let order = needs_order(wf)?;
        let scope = Arc::new(scope);
        let mut added: Vec<usize> = Vec::with_capacity(order.len());
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        let mut new_nodes = Vec::with_capacity(order.len());
        let first = self.nodes.len();
        for job_index in order {
            let job = &wf.jobs[job_index];
            let needs = job
                .needs
                .iter()
                .filter_map(|n| by_id.get(n.value.as_str()).copied())
                .collect();
            let index = first + new_nodes.len();
            by_id.insert(job.id.value.as_str(), index);
            new_nodes.push(Node {
                key: scope.key(&job.id.value),
                workflow,
                job: job_index,
                scope: Arc::clone(&scope),
                needs,
                name: scope.name(job.display_name()),
                state: NodeState::Pending,
                outputs: IndexMap::new(),
                above: Vec::new(),
                dependents: Vec::new(),
                waiting: 0,
            });
            added.push(index);
        }
        for node in new_nodes {
            let index = self.nodes.len();
            self.index.insert(node.key.clone(), index);
            self.nodes.push(node);
        }
        for &index in &added {
            let needs = self.nodes[index].needs.clone();
            self.nodes[index].waiting = needs.len();
            for need in needs {
                self.nodes[need].dependents.push(index);
            }
            if self.nodes[index].waiting == 0 {
                self.ready.insert(index);
            }
        }
        Ok(added)
    }

    /// What to do now. Call it after building the graph, after each [`RunGraph::finish`] and
    /// after [`RunGraph::cancel_run`]; it returns nothing new until something changes.
    pub fn next_actions(&mut self) -> Vec<Action> {
        self.settle();
        std::mem::take(&mut self.queued)
    }

    /// Takes every step the graph can take now (starts ready jobs, starts legs that fit,
    /// completes finished jobs), queueing the resulting actions behind those already queued.
    /// Idempotent: a settled graph is left unchanged. Inputs settle the graph before they
    /// apply, so its state after a series of inputs does not depend on when the driver called
    /// [`RunGraph::next_actions`] in between (see [`super::GraphInput`]).
    fn settle(&mut self) {
        let mut actions = std::mem::take(&mut self.queued);
        loop {
            let mut progressed = false;
            while let Some(idx) = self.ready.pop_first() {
                if matches!(self.nodes[idx].state, NodeState::Pending) {
                    self.start_job(idx, &mut actions);
                    progressed = true;
                }
            }
            let running: Vec<usize> = self.running.iter().copied().collect();
            for &idx in &running {
                progressed |= self.start_legs(idx, &mut actions);
            }
            // Called jobs (after their calling job in node order) complete first.
            let running: Vec<usize> = self.running.iter().rev().copied().collect();
            for idx in running {
                progressed |= self.complete(idx, &mut actions);
            }
            // Fail-fast over call legs queues cancels while completing.
            if !self.queued.is_empty() {
                actions.append(&mut self.queued);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.queued = actions;
    }

    fn ready_indices(&self) -> Vec<usize> {
        self.ready
            .iter()
            .copied()
            .filter(|&i| matches!(self.nodes[i].state, NodeState::Pending))
            .collect()
    }

    /// Gives job `idx` its result; its dependents whose needs are now all done become ready.
    fn set_done(&mut self, idx: usize, conclusion: Conclusion) {
        self.nodes[idx].state = NodeState::Done(conclusion);
        self.running.remove(&idx);
        self.ready.remove(&idx);
        let dependents = std::mem::take(&mut self.nodes[idx].dependents);
        for &d in &dependents {
            let node = &mut self.nodes[d];
            node.waiting = node.waiting.saturating_sub(1);
            if node.waiting == 0 && matches!(node.state, NodeState::Pending) {
                self.ready.insert(d);
            }
        }
        self.nodes[idx].dependents = dependents;
    }

    /// Jobs whose needs have all finished and which have not been started, skipped or failed.
    pub fn ready(&self) -> Vec<JobKey> {
        self.ready_indices()
            .into_iter()
            .map(|i| self.nodes[i].key.clone())
            .collect()
    }

    /// The `needs` context and the status functions' view of node `idx`.
    fn needs_view(&self, idx: usize, cancelled: bool) -> (Json, StatusView) {
        let node = &self.nodes[idx];
        let mut needs = Map::new();
        let mut direct = Vec::new();
        for &n in &node.needs {
            let need = &self.nodes[n];
            let id = self.workflows[need.workflow].jobs[need.job]
                .id
                .value
                .clone();
            let result = match need.state {
                NodeState::Done(c) => c,
                _ => Conclusion::Skipped,
            };
            let outputs: Map<String, Json> = need
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            needs.insert(
                id.clone(),
                json!({"result": result.as_str(), "outputs": outputs}),
            );
            direct.push((id, result));
        }
        // The kinds of results above the job: each need's, and the kinds above each need.
        let mut ancestors: Vec<Conclusion> = Vec::new();
        for &n in &node.needs {
            let need = &self.nodes[n];
            let result = match need.state {
                NodeState::Done(c) => c,
                _ => Conclusion::Skipped,
            };
            for kind in std::iter::once(&result).chain(&need.above) {
                if !ancestors.contains(kind) {
                    ancestors.push(*kind);
                }
            }
        }
        (
            Json::Object(needs),
            StatusView {
                cancelled,
                ancestors,
                needs: direct,
            },
        )
    }

    fn instantiate_index(&self, idx: usize) -> JobInstance {
        let node = &self.nodes[idx];
        let workflow = &self.workflows[node.workflow];
        let (needs, status) = self.needs_view(idx, self.cancelled);
        let req = JobRequest {
            workflow,
            job: &workflow.jobs[node.job],
            key: &node.key,
            scope: &node.scope,
            needs,
            status,
        };
        instance::instantiate(&req, &self.workflows)
    }

    /// What job `key` becomes if it were started now (its `if:`, matrix, legs). Changes
    /// nothing. An unknown key is a `Failed` instance saying so.
    pub fn instantiate(&self, key: &JobKey) -> JobInstance {
        match self.index.get(key) {
            Some(&idx) => self.instantiate_index(idx),
            None => JobInstance::Failed {
                reason: format!("no job `{key}` in this run"),
            },
        }
    }

    fn start_job(&mut self, idx: usize, actions: &mut Vec<Action>) {
        let (_, status) = self.needs_view(idx, self.cancelled);
        self.nodes[idx].above = status.ancestors;
        let instance = self.instantiate_index(idx);
        let node = &mut self.nodes[idx];
        match instance {
            JobInstance::Run {
                legs,
                fail_fast,
                max_parallel,
                secrets,
            } => {
                let legs = legs
                    .into_iter()
                    .map(|spec| RunLeg {
                        continue_on_error: spec.continue_on_error,
                        spec: Some(spec),
                        state: LegState::Waiting,
                    })
                    .collect();
                node.state = NodeState::Running {
                    legs: Legs::Run { legs, secrets },
                    fail_fast,
                    max_parallel,
                };
                self.running.insert(idx);
            }
            JobInstance::Call {
                legs,
                fail_fast,
                max_parallel,
            } => {
                let mut slots = Vec::with_capacity(legs.len());
                for leg in legs {
                    let workflow = self
                        .workflows
                        .iter()
                        .position(|w| w.file == leg.workflow)
                        .expect("a call leg names a workflow found among the graph's");
                    slots.push(CallSlot {
                        leg,
                        workflow,
                        state: LegState::Waiting,
                        children: Vec::new(),
                    });
                }
                self.nodes[idx].state = NodeState::Running {
                    legs: Legs::Call { legs: slots },
                    fail_fast,
                    max_parallel,
                };
                self.running.insert(idx);
            }
            JobInstance::Skipped { reason } => {
                let conclusion = if self.cancelled {
                    Conclusion::Cancelled
                } else {
                    Conclusion::Skipped
                };
                actions.push(Action::JobSkipped {
                    key: node.key.clone(),
                    name: node.name.clone(),
                    reason,
                });
                self.set_done(idx, conclusion);
            }
            JobInstance::Failed { reason } => {
                actions.push(Action::JobFailed {
                    key: node.key.clone(),
                    name: node.name.clone(),
                    reason,
                });
                self.set_done(idx, Conclusion::Failure);
            }
        }
    }

    /// Starts waiting legs of node `idx` up to its max-parallel.
    fn start_legs(&mut self, idx: usize, actions: &mut Vec<Action>) -> bool {
        if !matches!(self.nodes[idx].state, NodeState::Running { .. }) {
            return false;
        }
        let key = self.nodes[idx].key.clone();
        let NodeState::Running {
            legs, max_parallel, ..
        } = &mut self.nodes[idx].state
        else {
            return false;
        };
        let max_parallel = *max_parallel;
        let mut progressed = false;
        match legs {
            Legs::Run { legs, secrets } => {
                let mut active = legs.iter().filter(|l| l.state.is_active()).count();
                for (i, leg) in legs.iter_mut().enumerate() {
                    if active >= max_parallel {
                        break;
                    }
                    if leg.state != LegState::Waiting {
                        continue;
                    }
                    let Some(spec) = leg.spec.take() else {
                        continue;
                    };
                    leg.state = LegState::Running;
                    active += 1;
                    progressed = true;
                    actions.push(Action::StartLeg(Box::new(LegStart {
                        key: key.clone(),
                        leg: i,
                        spec,
                        secrets: secrets.clone(),
                    })));
                }
            }
            Legs::Call { legs } => {
                let active = legs.iter().filter(|l| l.state.is_active()).count();
                let to_start: Vec<usize> = legs
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.state == LegState::Waiting)
                    .map(|(i, _)| i)
                    .take(max_parallel.saturating_sub(active))
                    .collect();
                for i in to_start {
                    self.start_call_leg(idx, i, actions);
                    progressed = true;
                }
            }
        }
        progressed
    }

    fn start_call_leg(&mut self, idx: usize, slot: usize, actions: &mut Vec<Action>) {
        let outer = Arc::clone(&self.nodes[idx].scope);
        let (workflow, leg) = {
            let NodeState::Running {
                legs: Legs::Call { legs },
                ..
            } = &mut self.nodes[idx].state
            else {
                return;
            };
            legs[slot].state = LegState::Running;
            (legs[slot].workflow, legs[slot].leg.clone())
        };
        let scope = outer.for_call_leg(&leg);
        match self.add_jobs(workflow, scope) {
            Ok(children) => {
                if let NodeState::Running {
                    legs: Legs::Call { legs },
                    ..
                } = &mut self.nodes[idx].state
                {
                    legs[slot].children = children;
                }
            }
            Err(reason) => {
                if let NodeState::Running {
                    legs: Legs::Call { legs },
                    ..
                } = &mut self.nodes[idx].state
                {
                    legs[slot].state = LegState::Done(Conclusion::Failure);
                }
                actions.push(Action::JobFailed {
                    key: leg.prefix.clone(),
                    name: leg.name.clone(),
                    reason: format!("`{}`: {reason}", leg.workflow),
                });
            }
        }
    }

    /// Completes call legs whose jobs are all done and the job when all its legs are done.
    fn complete(&mut self, idx: usize, actions: &mut Vec<Action>) -> bool {
        let mut progressed = false;
        // Call legs whose children are all done.
        let finished_slots: Vec<usize> = match &self.nodes[idx].state {
            NodeState::Running {
                legs: Legs::Call { legs },
                ..
            } => legs
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.state.is_active()
                        && l.children
                            .iter()
                            .all(|&c| matches!(self.nodes[c].state, NodeState::Done(_)))
                })
                .map(|(i, _)| i)
                .collect(),
            _ => Vec::new(),
        };
        for slot in finished_slots {
            self.finish_call_leg(idx, slot);
            progressed = true;
        }
        let NodeState::Running { legs, .. } = &self.nodes[idx].state else {
            return progressed;
        };
        let conclusion = match legs {
            Legs::Run { legs, .. } if legs.iter().all(|l| matches!(l.state, LegState::Done(_))) => {
                aggregate(legs.iter().map(|l| match l.state {
                    LegState::Done(Conclusion::Failure) if l.continue_on_error => {
                        Conclusion::Success
                    }
                    LegState::Done(c) => c,
                    _ => Conclusion::Cancelled,
                }))
            }
            Legs::Call { legs } if legs.iter().all(|l| matches!(l.state, LegState::Done(_))) => {
                aggregate(legs.iter().map(|l| match l.state {
                    LegState::Done(c) => c,
                    _ => Conclusion::Cancelled,
                }))
            }
            _ => return progressed,
        };
        let node = &self.nodes[idx];
        actions.push(Action::JobFinished {
            key: node.key.clone(),
            name: node.name.clone(),
            conclusion,
        });
        self.set_done(idx, conclusion);
        true
    }

    /// Records the end of call leg `slot` of node `idx`: its result from the called jobs',
    /// its outputs from the called workflow's `outputs`, and fail-fast.
    fn finish_call_leg(&mut self, idx: usize, slot: usize) {
        let NodeState::Running {
            legs: Legs::Call { legs },
            fail_fast,
            ..
        } = &self.nodes[idx].state
        else {
            return;
        };
        let fail_fast = *fail_fast;
        let call_slot = &legs[slot];
        let mut jobs = Map::new();
        let mut results = Vec::new();
        for &c in &call_slot.children {
            let child = &self.nodes[c];
            let result = match child.state {
                NodeState::Done(r) => r,
                _ => Conclusion::Cancelled,
            };
            results.push(result);
            let outputs: Map<String, Json> = child
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            let id = self.workflows[child.workflow].jobs[child.job]
                .id
                .value
                .clone();
            jobs.insert(id, json!({"result": result.as_str(), "outputs": outputs}));
        }
        let mut conclusion = if results.contains(&Conclusion::Failure) {
            Conclusion::Failure
        } else if results.contains(&Conclusion::Cancelled) {
            Conclusion::Cancelled
        } else {
            Conclusion::Success
        };
        let workflow = &self.workflows[call_slot.workflow];
        let mut ctx = Contexts::new();
        let scope = &self.nodes[idx].scope;
        ctx.insert("github", Value::from(&scope.github));
        ctx.insert("vars", Value::from(&scope.vars));
        ctx.insert(
            "inputs",
            Value::from(Json::Object(call_slot.leg.inputs.clone())),
        );
        ctx.insert("jobs", Value::from(Json::Object(jobs)));
        let mut outputs = Vec::new();
        let mut errors = Vec::new();
        if let Some(interface) = &workflow.on.workflow_call {
            for output in &interface.outputs {
                match evaluate_string(&output.value.value, CALL_OUTPUT, &ctx) {
                    Ok(v) => outputs.push((output.name.value.clone(), v)),
                    Err(e) => errors.push(format!("output `{}`: {e}", output.name.value)),
                }
            }
        }
        if !errors.is_empty() {
            conclusion = Conclusion::Failure;
            self.queued.push(Action::JobFailed {
                key: call_slot.leg.prefix.clone(),
                name: call_slot.leg.name.clone(),
                reason: errors.join("; "),
            });
        }
        let node = &mut self.nodes[idx];
        for (name, value) in outputs {
            if !value.is_empty() {
                node.outputs.insert(name, value);
            }
        }
        if let NodeState::Running {
            legs: Legs::Call { legs },
            ..
        } = &mut node.state
        {
            legs[slot].state = LegState::Done(conclusion);
        }
        if conclusion == Conclusion::Failure && fail_fast {
            self.cancel_legs(
                idx,
                &format!("fail-fast: a leg of `{}` failed", self.nodes[idx].key),
            );
        }
    }

    /// Cancels the legs of node `idx` not yet done: running ones get a [`Action::CancelLeg`],
    /// waiting ones are cancelled at once; for a call, the called jobs are cancelled.
    fn cancel_legs(&mut self, idx: usize, reason: &str) {
        let key = self.nodes[idx].key.clone();
        let mut children = Vec::new();
        if let NodeState::Running { legs, .. } = &mut self.nodes[idx].state {
            match legs {
                Legs::Run { legs, .. } => {
                    for (i, leg) in legs.iter_mut().enumerate() {
                        match leg.state {
                            LegState::Waiting => leg.state = LegState::Done(Conclusion::Cancelled),
                            LegState::Running => {
                                leg.state = LegState::Cancelling;
                                self.queued.push(Action::CancelLeg {
                                    key: key.clone(),
                                    leg: i,
                                    reason: reason.to_owned(),
                                });
                            }
                            _ => {}
                        }
                    }
                }
                Legs::Call { legs } => {
                    for leg in legs.iter_mut() {
                        match leg.state {
                            LegState::Waiting => leg.state = LegState::Done(Conclusion::Cancelled),
                            LegState::Running => children.extend(leg.children.iter().copied()),
                            _ => {}
                        }
                    }
                }
            }
        }
        for child in children {
            self.cancel_job(child, reason);
        }
    }

    /// Cancels job `idx`: a pending job is cancelled without running, a running one has its
    /// legs cancelled.
    fn cancel_job(&mut self, idx: usize, reason: &str) {
        match self.nodes[idx].state {
            NodeState::Pending => {
                let node = &self.nodes[idx];
                self.queued.push(Action::JobSkipped {
                    key: node.key.clone(),
                    name: node.name.clone(),
                    reason: reason.to_owned(),
                });
                self.set_done(idx, Conclusion::Cancelled);
            }
            NodeState::Running { .. } => self.cancel_legs(idx, reason),
            NodeState::Done(_) => {}
        }
    }

    /// Records the end of a leg with its conclusion and the outputs it set. A leg that is not
    /// running (unknown key or index, already finished) is ignored.
    pub fn finish(
        &mut self,
        key: &JobKey,
        leg: usize,
        conclusion: Conclusion,
        outputs: IndexMap<String, String>,
    ) {
        self.settle();
        let Some(&idx) = self.index.get(key) else {
            return;
        };
        let node = &mut self.nodes[idx];
        let NodeState::Running {
            legs: Legs::Run { legs, .. },
            fail_fast,
            ..
        } = &mut node.state
        else {
            return;
        };
        let fail_fast = *fail_fast;
        let Some(slot) = legs.get_mut(leg) else {
            return;
        };
        if !slot.state.is_active() {
            return;
        }
        slot.state = LegState::Done(conclusion);
        let counts_as_failure = conclusion == Conclusion::Failure && !slot.continue_on_error;
        for (name, value) in outputs {
            if !value.is_empty() {
                node.outputs.insert(name, value);
            }
        }
        if counts_as_failure && fail_fast {
            let reason = format!("fail-fast: leg {} of `{key}` failed", leg + 1);
            self.cancel_legs(idx, &reason);
        }
    }

    /// Cancels the run: running legs get [`Action::CancelLeg`] (unless their job's `if:` is
    /// still true in a cancelled run, like `always()`), jobs not started are cancelled unless
    /// their `if:` asks to run anyway. The actions come with the next [`RunGraph::next_actions`].
    pub fn cancel_run(&mut self) {
        if self.cancelled {
            return;
        }
        self.settle();
        self.cancelled = true;
        for idx in 0..self.nodes.len() {
            if !matches!(self.nodes[idx].state, NodeState::Running { .. }) {
                continue;
            }
            if self.keeps_running_when_cancelled(idx) {
                continue;
            }
            if let NodeState::Running {
                legs: Legs::Run { .. },
                ..
            } = self.nodes[idx].state
            {
                self.cancel_legs(idx, "the run was cancelled");
            } else if let NodeState::Running {
                legs: Legs::Call { legs },
                ..
            } = &mut self.nodes[idx].state
            {
                // Called jobs decide for themselves (they are nodes too); legs not started
                // never will.
                for leg in legs.iter_mut() {
                    if leg.state == LegState::Waiting {
                        leg.state = LegState::Done(Conclusion::Cancelled);
                    }
                }
            }
        }
    }

    /// Whether node `idx`'s `if:` is still true once the run is cancelled.
    fn keeps_running_when_cancelled(&self, idx: usize) -> bool {
        let node = &self.nodes[idx];
        let workflow = &self.workflows[node.workflow];
        let job = &workflow.jobs[node.job];
        let (needs, status) = self.needs_view(idx, true);
        let mut ctx = job_contexts(&node.scope, &needs);
        status.install(&mut ctx);
        evaluate_condition(&job.condition.expression, &ctx).unwrap_or(false)
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// How many legs of job `key` may run at once (`strategy.max-parallel`, at most the number
    /// of legs). `None` until the job is started.
    pub fn max_parallel(&self, key: &JobKey) -> Option<usize> {
        match &self.nodes[*self.index.get(key)?].state {
            NodeState::Running { max_parallel, .. } => Some(*max_parallel),
            _ => None,
        }
    }

    /// The result of job `key`, once known.
    pub fn result(&self, key: &JobKey) -> Option<Conclusion> {
        match self.nodes[*self.index.get(key)?].state {
            NodeState::Done(c) => Some(c),
            _ => None,
        }
    }

    /// The outputs of job `key` so far (for a matrix job: per output, the last leg to finish
    /// that set it wins; for a call: the called workflow's outputs).
    pub fn outputs(&self, key: &JobKey) -> Option<&IndexMap<String, String>> {
        Some(&self.nodes[*self.index.get(key)?].outputs)
    }

    /// The display name of job `key` as known now (`name:` as written, or the id; prefixed by
    /// the calling job for jobs of called workflows).
    pub fn name(&self, key: &JobKey) -> Option<&str> {
        Some(&self.nodes[*self.index.get(key)?].name)
    }

    /// Every job known so far (jobs of called workflows appear when their call starts), in
    /// order, with its result once known.
    pub fn jobs(&self) -> Vec<(JobKey, Option<Conclusion>)> {
        self.nodes
            .iter()
            .map(|n| {
                let result = match n.state {
                    NodeState::Done(c) => Some(c),
                    _ => None,
                };
                (n.key.clone(), result)
            })
            .collect()
    }

    /// Whether every job has a result.
    pub fn is_finished(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n.state, NodeState::Done(_)))
    }

    /// The run's result once finished: `failure` if a job failed, else `cancelled` if the run
    /// (or a job) was cancelled, else `success` (skipped jobs do not fail a run).
    pub fn conclusion(&self) -> Option<Conclusion> {
        if !self.is_finished() {
            return None;
        }
        let results = self.nodes.iter().filter_map(|n| match n.state {
            NodeState::Done(c) => Some(c),
            _ => None,
        });
        let mut any_cancelled = self.cancelled;
        for result in results {
            match result {
                Conclusion::Failure => return Some(Conclusion::Failure),
                Conclusion::Cancelled => any_cancelled = true,
                _ => {}
            }
        }
        Some(if any_cancelled {
            Conclusion::Cancelled
        } else {
            Conclusion::Success
        })
    }
}

/// A job's result from its legs': failure, else cancelled, else skipped when all were, else
/// success.
fn aggregate(results: impl Iterator<Item = Conclusion>) -> Conclusion {
    let mut any = false;
    let mut all_skipped = true;
    let mut cancelled = false;
    for result in results {
        any = true;
        match result {
            Conclusion::Failure => return Conclusion::Failure,
            Conclusion::Cancelled => cancelled = true,
            Conclusion::Skipped => {}
            Conclusion::Success => all_skipped = false,
        }
        if result != Conclusion::Skipped {
            all_skipped = false;
        }
    }
    if cancelled {
        Conclusion::Cancelled
    } else if any && all_skipped {
        Conclusion::Skipped
    } else {
        Conclusion::Success
    }
}
