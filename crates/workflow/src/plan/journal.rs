//! The inputs of a [`RunGraph`] as data ([`GraphInput`]), so that a driver can journal them and
//! rebuild the graph later ([`RunGraph::replay`]): a run graph is a pure function of its plan
//! and its journal.
//!
//! Why this holds:
//! - Building a graph and every step it takes are deterministic: no clock, no randomness, and
//!   no hash-map iteration decides an order (jobs are kept in needs order, ready and running
//!   jobs in ordered sets).
//! - Inputs settle the graph before they apply: whatever [`RunGraph::next_actions`] would have
//!   done (start ready jobs with the needs' results known now, start legs that fit, complete
//!   jobs) is done first and its actions are queued. So the state after a series of inputs does
//!   not depend on how often the driver asked for actions in between; only which actions it
//!   has already been handed does.
//! - An input that does not apply (a leg that is not running, an unknown key, a second
//!   `cancel_run`) changes nothing, in the original and in the replay alike.
//!
//! What a driver must keep for a run: the [`super::RunContext`] it planned with (after setting
//! the run number and id), the workflow sources it planned from, and the inputs in the order it
//! applied them. To rebuild: parse the sources, [`super::plan_run`] with the same context, pick
//! the same workflow's plan and call [`RunGraph::replay`]. The same version of Gantry must
//! replay a journal: a change to planning rules may change what a replayed run does.

use gantry_protocol::Conclusion;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::JobKey;
use super::graph::{GraphError, RunGraph};
use super::planner::WorkflowPlan;
use crate::model::Workflow;

/// One input of a run graph, as a driver journals it. Stored as JSON:
/// `{"type":"finish","key":"build","leg":0,"conclusion":"success","outputs":{"v":"1"}}` and
/// `{"type":"cancel_run"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GraphInput {
    /// [`RunGraph::finish`]: a leg ended with this conclusion and these outputs.
    Finish {
        key: JobKey,
        leg: usize,
        conclusion: Conclusion,
        #[serde(default)]
        outputs: IndexMap<String, String>,
    },
    /// [`RunGraph::cancel_run`]: the run was cancelled.
    CancelRun,
}

impl RunGraph {
    /// Applies one journaled input: [`RunGraph::finish`] or [`RunGraph::cancel_run`]. Its
    /// actions come with the next [`RunGraph::next_actions`].
    pub fn apply(&mut self, input: &GraphInput) {
        match input {
            GraphInput::Finish {
                key,
                leg,
                conclusion,
                outputs,
            } => self.finish(key, *leg, *conclusion, outputs.clone()),
            GraphInput::CancelRun => self.cancel_run(),
        }
    }

    /// Rebuilds a run graph from its plan, its workflows and its journal: builds it with
    /// [`RunGraph::new`], then for each input asks for the next actions (and drops them: the
    /// driver performed them when the input was first applied) and applies it.
    ///
    /// The graph returned is in the state the original was in right after the last input was
    /// applied: its next [`RunGraph::next_actions`] returns exactly what the original's did then
    /// (everything for an empty journal). A driver that had already performed those actions
    /// before it stopped must treat them as done (a leg already started, a job already marked).
    pub fn replay(
        plan: &WorkflowPlan,
        workflows: &[Workflow],
        journal: &[GraphInput],
    ) -> Result<RunGraph, GraphError> {
        let mut graph = RunGraph::new(plan, workflows)?;
        for input in journal {
            graph.next_actions();
            graph.apply(input);
        }
        Ok(graph)
    }
}

#[cfg(test)]
mod tests {
    use gantry_protocol::Conclusion;
    use serde_json::json;

    use super::*;
    use crate::parse_workflow;
    use crate::plan::{Action, RunContext, plan_run};
    use crate::trigger::Event;

    /// A driver that journals what it applies and, before every request for actions, checks
    /// that replaying the journal into a fresh graph gives the same actions and state.
    struct Recorder {
        plan: WorkflowPlan,
        workflows: Vec<Workflow>,
        graph: RunGraph,
        journal: Vec<GraphInput>,
        /// Legs started and not finished, in start order.
        running: Vec<(JobKey, usize)>,
        /// Every action handed out, in order.
        handed_out: Vec<Action>,
    }

    fn context() -> RunContext {
        let mut ctx = RunContext::new(Event {
            name: "push".into(),
            git_ref: Some("refs/heads/main".into()),
            ..Event::default()
        });
        ctx.payload = json!({"head_commit": {"message": "journal"}});
        ctx.vars.insert("LEVEL".into(), "2".into());
        ctx.secret_names = vec!["TOKEN".into()];
        ctx
    }

    /// Parses `files` (file name, YAML) and plans the first with [`context`], as a server does
    /// from the stored context and sources.
    fn planned(files: &[(&str, &str)], ctx: &RunContext) -> (WorkflowPlan, Vec<Workflow>) {
        let workflows: Vec<Workflow> = files
            .iter()
            .map(|(file, yaml)| {
                let parsed = parse_workflow(file, yaml);
                assert!(!parsed.has_errors(), "{file}: {:#?}", parsed.diagnostics);
                parsed.workflow.expect("valid workflow")
            })
            .collect();
        let plan = plan_run(&workflows, ctx).workflows.remove(0);
        (plan, workflows)
    }

    impl Recorder {
        fn new(files: &[(&str, &str)]) -> Recorder {
            let (plan, workflows) = planned(files, &context());
            let graph = RunGraph::new(&plan, &workflows).expect("runnable");
            Recorder {
                plan,
                workflows,
                graph,
                journal: Vec::new(),
                running: Vec::new(),
                handed_out: Vec::new(),
            }
        }

        fn step(&mut self) -> Vec<Action> {
            let mut replayed =
                RunGraph::replay(&self.plan, &self.workflows, &self.journal).expect("replays");
            let expected = self.graph.next_actions();
            let got = replayed.next_actions();
            assert_eq!(got, expected, "actions after replaying {:#?}", self.journal);
            assert_same_state(&replayed, &self.graph, &self.journal);
            for action in &expected {
                if let Action::StartLeg(start) = action {
                    self.running.push((start.key.clone(), start.leg));
                }
            }
            self.handed_out.extend(expected.iter().cloned());
            expected
        }

        fn apply(&mut self, input: GraphInput) {
            if let GraphInput::Finish { key, leg, .. } = &input {
                self.running.retain(|(k, l)| !(k == key && l == leg));
            }
            self.graph.apply(&input);
            self.journal.push(input);
        }

        /// Drives the run to its end: `decide` picks each input from the running legs and the
        /// number of inputs so far.
        fn run(&mut self, mut decide: impl FnMut(&[(JobKey, usize)], usize) -> GraphInput) {
            for _ in 0..1_000 {
                self.step();
                if self.graph.is_finished() {
                    // A finished graph replays to a graph that finishes alike once it has
                    // taken the steps the original took when asked for its last actions.
                    let mut replayed = RunGraph::replay(&self.plan, &self.workflows, &self.journal)
                        .expect("replays");
                    replayed.next_actions();
                    assert!(replayed.is_finished());
                    assert_eq!(replayed.conclusion(), self.graph.conclusion());
                    return;
                }
                assert!(
                    !self.running.is_empty(),
                    "the run is stuck: nothing runs after {:#?}",
                    self.journal
                );
                let input = decide(&self.running, self.journal.len());
                self.apply(input);
            }
            panic!("the run did not finish in 1,000 inputs");
        }
    }

    fn assert_same_state(replayed: &RunGraph, original: &RunGraph, journal: &[GraphInput]) {
        assert_eq!(replayed.jobs(), original.jobs(), "jobs after {journal:#?}");
        assert_eq!(
            replayed.ready(),
            original.ready(),
            "ready after {journal:#?}"
        );
        assert_eq!(replayed.is_cancelled(), original.is_cancelled());
        assert_eq!(replayed.is_finished(), original.is_finished());
        assert_eq!(replayed.conclusion(), original.conclusion());
        for (key, _) in original.jobs() {
            assert_eq!(replayed.outputs(&key), original.outputs(&key), "{key}");
            assert_eq!(replayed.name(&key), original.name(&key), "{key}");
            assert_eq!(
                replayed.max_parallel(&key),
                original.max_parallel(&key),
                "{key}"
            );
        }
    }

    fn finish(
        key: &JobKey,
        leg: usize,
        conclusion: Conclusion,
        outputs: &[(&str, &str)],
    ) -> GraphInput {
        GraphInput::Finish {
            key: key.clone(),
            leg,
            conclusion,
            outputs: outputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    const NEEDS_CHAIN: &str = r#"
on: push
jobs:
  a:
    runs-on: x
    outputs: {v: "${{ steps.s.outputs.v }}"}
    steps: [run: a]
  b:
    needs: a
    runs-on: ${{ needs.a.outputs.v || 'x' }}
    steps: [run: b]
  c:
    needs: b
    if: failure()
    runs-on: x
    steps: [run: c]
  d:
    needs: [a, b]
    if: always()
    runs-on: x
    steps: [run: d]
  e:
    needs: d
    if: cancelled()
    runs-on: x
    steps: [run: e]
  f:
    needs: [a]
    runs-on: x
    steps: [run: f]
"#;

    const MATRIX: &str = r#"
on: push
jobs:
  test:
    runs-on: x
    continue-on-error: ${{ matrix.os == 'c' }}
    strategy:
      fail-fast: true
      max-parallel: 2
      matrix:
        os: [a, b, c]
        v: [1, 2]
    steps: [run: t]
  slow:
    runs-on: x
    strategy:
      fail-fast: false
      matrix: {n: [1, 2, 3]}
    steps: [run: s]
  after:
    needs: [test, slow]
    if: always()
    runs-on: x
    steps: [run: a]
"#;

    const DYNAMIC: &str = r#"
on: push
jobs:
  setup:
    runs-on: x
    outputs:
      key: ${{ steps.m.outputs.key }}
      list: ${{ steps.m.outputs.list }}
    steps: [run: m]
  test:
    needs: setup
    runs-on: x
    strategy:
      matrix:
        ${{ needs.setup.outputs.key }}: ${{ fromJSON(needs.setup.outputs.list) }}
        include:
          - ${{ insert }}: {extra: 1}
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps: [run: t]
  report:
    needs: test
    if: always()
    runs-on: ${{ needs.test.outputs.v || 'x' }}
    steps: [run: r]
"#;

    const CALLER: &str = r#"
on: push
jobs:
  first:
    runs-on: x
    outputs: {n: "${{ steps.s.outputs.n }}"}
    steps: [run: f]
  call:
    needs: first
    strategy:
      matrix:
        n: [1, 2]
    uses: ./.github/workflows/reusable.yml
    with:
      n: ${{ matrix.n }}
    secrets: inherit
  after:
    needs: call
    if: always()
    runs-on: ${{ needs.call.outputs.out || 'x' }}
    steps: [run: a]
"#;

    const REUSABLE: &str = r#"
on:
  workflow_call:
    inputs:
      n: {type: number, required: true}
    outputs:
      out:
        value: ${{ jobs.b.outputs.v }}
jobs:
  a:
    runs-on: x
    steps: [run: a]
  b:
    needs: a
    runs-on: x
    strategy:
      matrix: {m: [1, 2]}
    outputs: {v: "${{ steps.s.outputs.v }}"}
    steps: [run: b]
"#;

    fn scenarios() -> Vec<Vec<(&'static str, &'static str)>> {
        vec![
            vec![(".github/workflows/chain.yml", NEEDS_CHAIN)],
            vec![(".github/workflows/matrix.yml", MATRIX)],
            vec![(".github/workflows/dynamic.yml", DYNAMIC)],
            vec![
                (".github/workflows/caller.yml", CALLER),
                (".github/workflows/reusable.yml", REUSABLE),
            ],
        ]
    }

    /// Outputs a leg of `key` may set, chosen by `pick`.
    fn outputs_for(key: &JobKey, pick: usize) -> Vec<(&'static str, &'static str)> {
        match key.as_str() {
            "setup" => [
                vec![("key", "os"), ("list", r#"["l", "w"]"#)],
                vec![("key", "arch"), ("list", r#"["x"]"#)],
                vec![("key", "os"), ("list", "[]")],
                vec![("key", "os"), ("list", "not json")],
            ][pick % 4]
                .clone(),
            "a" => [vec![("v", "big")], vec![], vec![("v", "")]][pick % 3].clone(),
            _ => [vec![("v", "one")], vec![("v", "two"), ("n", "3")], vec![]][pick % 3].clone(),
        }
    }

    #[test]
    fn replaying_a_journal_at_every_point_gives_the_same_graph() {
        for files in scenarios() {
            // Everything succeeds, first started first.
            let mut rec = Recorder::new(&files);
            rec.run(|running, _| {
                let (key, leg) = &running[0];
                finish(key, *leg, Conclusion::Success, &outputs_for(key, 0))
            });
            // The second input is a failure, the others successes, newest leg first.
            let mut rec = Recorder::new(&files);
            rec.run(|running, n| {
                let (key, leg) = &running[running.len() - 1];
                let conclusion = if n == 1 {
                    Conclusion::Failure
                } else {
                    Conclusion::Success
                };
                finish(key, *leg, conclusion, &outputs_for(key, n))
            });
            // Leg 1 of every matrix fails, oldest leg first: fail-fast cancels running legs and
            // drops waiting ones.
            let mut rec = Recorder::new(&files);
            rec.run(|running, n| {
                let (key, leg) = &running[0];
                let conclusion = if *leg == 1 {
                    Conclusion::Failure
                } else {
                    Conclusion::Success
                };
                finish(key, *leg, conclusion, &outputs_for(key, n))
            });
        }
    }

    #[test]
    fn a_run_cancelled_midway_replays_to_the_same_graph() {
        for files in scenarios() {
            for cancel_at in 0..4 {
                let mut rec = Recorder::new(&files);
                rec.run(|running, n| {
                    if n == cancel_at {
                        return GraphInput::CancelRun;
                    }
                    let (key, leg) = &running[0];
                    let conclusion = if n > cancel_at {
                        Conclusion::Cancelled
                    } else {
                        Conclusion::Success
                    };
                    finish(key, *leg, conclusion, &outputs_for(key, 1))
                });
                let cancelled = rec.journal.contains(&GraphInput::CancelRun);
                assert_eq!(rec.graph.is_cancelled(), cancelled);
                assert!(
                    cancelled || cancel_at > 0,
                    "a run is cancelled at its first input"
                );
            }
        }
    }

    #[test]
    fn inputs_that_do_not_apply_replay_as_no_ops() {
        let mut rec = Recorder::new(&[(".github/workflows/chain.yml", NEEDS_CHAIN)]);
        for input in [
            finish(&"nope".into(), 0, Conclusion::Failure, &[]),
            finish(&"a".into(), 7, Conclusion::Failure, &[]),
            finish(&"a".into(), 0, Conclusion::Success, &[("v", "y")]),
            finish(&"a".into(), 0, Conclusion::Failure, &[]),
            GraphInput::CancelRun,
            GraphInput::CancelRun,
        ] {
            rec.step();
            rec.apply(input);
        }
        rec.run(|running, _| finish(&running[0].0, running[0].1, Conclusion::Cancelled, &[]));
        assert_eq!(rec.graph.result(&"a".into()), Some(Conclusion::Success));
        assert_eq!(rec.graph.conclusion(), Some(Conclusion::Cancelled));
    }

    #[test]
    fn the_state_does_not_depend_on_when_the_driver_asks_for_actions() {
        // One driver asks after every input, the other only after every third: the same
        // actions come out, in the same order, and the graphs end alike.
        for files in scenarios() {
            let mut rec = Recorder::new(&files);
            rec.run(|running, n| {
                let (key, leg) = &running[n % running.len()];
                let conclusion = [Conclusion::Success, Conclusion::Failure][n % 5 / 4];
                finish(key, *leg, conclusion, &outputs_for(key, n))
            });
            let mut lazy = RunGraph::new(&rec.plan, &rec.workflows).expect("runnable");
            let mut actions = lazy.next_actions();
            for (i, input) in rec.journal.iter().enumerate() {
                lazy.apply(input);
                if i % 3 == 2 {
                    actions.extend(lazy.next_actions());
                }
            }
            actions.extend(lazy.next_actions());
            assert_eq!(actions, rec.handed_out);
            assert_same_state(&lazy, &rec.graph, &rec.journal);
        }
    }

    #[test]
    fn the_journal_and_the_context_survive_json() {
        let input = finish(&"call (1)/b".into(), 1, Conclusion::Failure, &[("v", "1")]);
        let text = serde_json::to_string(&input).expect("serializes");
        assert_eq!(
            text,
            r#"{"type":"finish","key":"call (1)/b","leg":1,"conclusion":"failure","outputs":{"v":"1"}}"#
        );
        assert_eq!(serde_json::from_str::<GraphInput>(&text).ok(), Some(input));
        let cancel = serde_json::to_string(&GraphInput::CancelRun).expect("serializes");
        assert_eq!(cancel, r#"{"type":"cancel_run"}"#);
        assert_eq!(
            serde_json::from_str::<GraphInput>(
                r#"{"type":"finish","key":"a","leg":0,"conclusion":"success"}"#
            )
            .ok(),
            Some(finish(&"a".into(), 0, Conclusion::Success, &[]))
        );

        // A stored context plans the same run again.
        let mut ctx = context();
        ctx.inputs = vec![("n".into(), "1".into())];
        ctx.event.changed_paths = Some(vec!["src/lib.rs".into()]);
        let stored = serde_json::to_string(&ctx).expect("serializes");
        let restored: RunContext = serde_json::from_str(&stored).expect("deserializes");
        assert_eq!(restored, ctx);
        let files = [
            (".github/workflows/caller.yml", CALLER),
            (".github/workflows/reusable.yml", REUSABLE),
        ];
        assert_eq!(planned(&files, &restored), planned(&files, &ctx));

        // Actions (for a driver that queues them) survive too.
        let mut rec = Recorder::new(&files);
        let actions = rec.step();
        let text = serde_json::to_string(&actions).expect("serializes");
        let back: Vec<Action> = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, actions);
    }

    #[test]
    fn an_empty_journal_replays_to_a_new_graph() {
        let (plan, workflows) = planned(&[(".github/workflows/m.yml", MATRIX)], &context());
        let mut fresh = RunGraph::new(&plan, &workflows).expect("runnable");
        let mut replayed = RunGraph::replay(&plan, &workflows, &[]).expect("replays");
        assert_eq!(replayed.next_actions(), fresh.next_actions());
        let not_runnable = plan_run(&workflows, &RunContext::new(Event::default()));
        assert!(RunGraph::replay(&not_runnable.workflows[0], &workflows, &[]).is_err());
    }

    /// One random decision of a driver.
    #[derive(Clone, Debug)]
    struct Choice {
        leg: usize,
        conclusion: usize,
        outputs: usize,
        /// 0: cancel the run; 1: an input that does not apply; otherwise finish a leg.
        kind: u8,
    }

    fn arb_choice() -> impl proptest::strategy::Strategy<Value = Choice> {
        use proptest::prelude::*;
        (0usize..8, 0usize..5, 0usize..6, 0u8..24).prop_map(|(leg, conclusion, outputs, kind)| {
            Choice {
                leg,
                conclusion,
                outputs,
                kind,
            }
        })
    }

    fn decide(choices: &[Choice], running: &[(JobKey, usize)], n: usize) -> GraphInput {
        let Some(choice) = choices.get(n) else {
            let (key, leg) = &running[0];
            return finish(key, *leg, Conclusion::Success, &[]);
        };
        let (key, leg) = &running[choice.leg % running.len()];
        match choice.kind {
            0 => GraphInput::CancelRun,
            1 => finish(key, leg + 5, Conclusion::Failure, &[]),
            _ => {
                let conclusion = [
                    Conclusion::Success,
                    Conclusion::Success,
                    Conclusion::Failure,
                    Conclusion::Cancelled,
                    Conclusion::Skipped,
                ][choice.conclusion];
                finish(key, *leg, conclusion, &outputs_for(key, choice.outputs))
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn random_runs_replay_to_the_same_graph(
            scenario in 0usize..4,
            choices in proptest::collection::vec(arb_choice(), 0..40),
        ) {
            let files = &scenarios()[scenario];
            let mut rec = Recorder::new(files);
            rec.run(|running, n| decide(&choices, running, n));
        }
    }
}
