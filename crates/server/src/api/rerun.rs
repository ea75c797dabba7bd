//! Running a completed run again: a new run of the same workflow, with the same context (the
//! event, its payload, the commit, the secret names) and the same workflow sources, and
//! `attempt` one higher.
//!
//! A full re-run plans the graph afresh, as the ingester does. A re-run of the failed jobs
//! drives a fresh graph and feeds it, in place of starting them, the successful legs of the
//! previous attempt: each time the graph would start a leg that succeeded before, it gets that
//! leg's `Finish` (success, with the outputs it had) instead. So only the legs that did not
//! succeed, and the jobs that need them, run again, and their dependents see the kept outputs.
//! The results fed are the first inputs of the new run's journal, so replaying it rebuilds the
//! same graph (docs/architecture.md, "a run graph is a pure function of its plan and its
//! journal").

use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::forge::status::CommitState;
use crate::ingest::{after_insert, final_status};
use crate::run_state::{self, GraphDoc, JobNote};
use crate::store::{JobStatus, NewRun, NewStatus, Run, RunStatus};
use gantry_protocol::Conclusion;
use gantry_workflow::plan::{Action, GraphInput, RunGraph};
use indexmap::IndexMap;
use std::collections::{BTreeSet, HashMap};

/// The legs of a graph journal that succeeded: (key, leg) to their outputs. A leg's first
/// `Finish` is the one its graph took (later ones for the same leg change nothing).
pub fn successful_legs(
    journal: &[GraphInput],
) -> HashMap<(String, usize), IndexMap<String, String>> {
    let mut seen = BTreeSet::new();
    let mut kept = HashMap::new();
    for input in journal {
        if let GraphInput::Finish {
            key,
            leg,
            conclusion,
            outputs,
        } = input
        {
            let id = (key.as_str().to_owned(), *leg);
            if !seen.insert(id.clone()) {
                continue;
            }
            if *conclusion == Conclusion::Success {
                kept.insert(id, outputs.clone());
            }
        }
    }
    kept
}

/// What a fresh graph does when the legs in `kept` are fed their earlier results: the inputs
/// fed (the new journal) and the other actions, to perform.
pub fn drive_with_kept(
    graph: &mut RunGraph,
    kept: &HashMap<(String, usize), IndexMap<String, String>>,
) -> (Vec<GraphInput>, Vec<Action>) {
    let mut journal = Vec::new();
    let mut actions = Vec::new();
    loop {
        let mut fed = false;
        for action in graph.next_actions() {
            match action {
                Action::StartLeg(start) => {
                    match kept.get(&(start.key.as_str().to_owned(), start.leg)) {
                        Some(outputs) => {
                            let input = GraphInput::Finish {
                                key: start.key.clone(),
                                leg: start.leg,
                                conclusion: Conclusion::Success,
                                outputs: outputs.clone(),
                            };
                            graph.apply(&input);
                            journal.push(input);
                            fed = true;
                        }
                        None => actions.push(Action::StartLeg(start)),
                    }
                }
                other => actions.push(other),
            }
        }
        if !fed {
            return (journal, actions);
        }
    }
}

/// Starts `old` again (see the module docs); answers the new run.
pub async fn rerun(state: &AppState, old: &Run, failed_only: bool) -> Result<Run, ApiError> {
    if old.status != RunStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "run {} is still {}: cancel it or wait for it to end before running it again",
            old.id,
            old.status.as_str()
        )));
    }
    if failed_only && old.conclusion == Some(Conclusion::Success) {
        return Err(ApiError::Conflict(format!(
            "run {} succeeded: there are no failed jobs to run again",
            old.id
        )));
    }
    let loaded = run_state::load(old).map_err(|message| {
        tracing::warn!(run = %old.id, %message, "cannot rebuild the run for a re-run");
        ApiError::Conflict(format!(
            "run {} cannot run again: its workflow could not run at this commit",
            old.id
        ))
    })?;
    let workflows = loaded.workflows;
    let mut context = loaded.context;
    let attempt = old.attempt.saturating_add(1);
    context.run_attempt = attempt;
    let plan = run_state::find_plan(&workflows, &context, &old.workflow_file)
        .map_err(ApiError::Conflict)?;
    if !plan.is_runnable() {
        let why = if plan.errors.is_empty() {
            plan.reason.clone()
        } else {
            plan.errors.join("; ")
        };
        return Err(ApiError::Conflict(format!(
            "run {} cannot run again: {why}",
            old.id
        )));
    }
    let Some(workflow) = workflows.iter().find(|w| w.file == plan.file) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "run {}: the planned workflow {} is missing",
            old.id,
            plan.file
        )));
    };
    let mut graph = RunGraph::new(&plan, &workflows)
        .map_err(|e| ApiError::Conflict(format!("run {} cannot run again: {e}", old.id)))?;

    let kept = if failed_only {
        successful_legs(&loaded.doc.journal)
    } else {
        HashMap::new()
    };
    let (journal, actions) = drive_with_kept(&mut graph, &kept);
    let effects = run_state::effects(actions, &state.config, &workflows);
    let mut jobs = effects.new_jobs;
    let mut notes = effects.notes;
    mark_kept_jobs(&mut notes, &journal, &jobs, old);

    let concurrency = run_state::workflow_concurrency(&plan, workflow);
    if let Some((group, false)) = &concurrency {
        let busy = !state
            .db
            .list_active_runs_in_group(group)
            .await
            .map_err(store_error)?
            .is_empty();
        if busy {
            for job in &mut jobs {
                job.status = JobStatus::Waiting;
            }
        }
    }
    let finished = graph.is_finished();
    let conclusion = if finished { graph.conclusion() } else { None };
    let status_context = format!("gantry/{}", plan.name);
    let mut statuses = vec![NewStatus {
        state: CommitState::Pending,
        context: status_context.clone(),
        description: Some(format!("queued (attempt {attempt})")),
        target_url: None,
    }];
    if finished {
        statuses.push(final_status(&status_context, conclusion));
    }
    let doc = GraphDoc { journal, notes };
    let new = NewRun {
        repository_id: old.repository_id.clone(),
        workflow_file: old.workflow_file.clone(),
        workflow_name: plan.name.clone(),
        title: old.title.clone(),
        event: old.event.clone(),
        git_ref: old.git_ref.clone(),
        sha: old.sha.clone(),
        context: serde_json::to_string(&context)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("run context: {e}")))?,
        sources: old.sources.clone(),
        graph: serde_json::to_string(&doc)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("run graph: {e}")))?,
        status: if finished {
            RunStatus::Completed
        } else {
            RunStatus::Queued
        },
        conclusion,
        trusted: old.trusted,
        concurrency_group: concurrency.as_ref().map(|(g, _)| g.clone()),
        cancel_in_progress: concurrency.as_ref().is_some_and(|(_, c)| *c),
        attempt,
        delivery_id: None,
    };
    let (run, _jobs) = state
        .db
        .insert_run_with_jobs(&new, &jobs, &statuses, now_ms())
        .await
        .map_err(store_error)?;
    after_insert(state, std::slice::from_ref(&run)).await;
    Ok(run)
}

/// Says, on the notes of jobs whose every leg was kept, where their result comes from.
fn mark_kept_jobs(
    notes: &mut [JobNote],
    journal: &[GraphInput],
    new_jobs: &[crate::store::NewJob],
    old: &Run,
) {
    let kept_keys: BTreeSet<&str> = journal
        .iter()
        .filter_map(|input| match input {
            GraphInput::Finish { key, .. } => Some(key.as_str()),
            GraphInput::CancelRun => None,
        })
        .collect();
    for note in notes.iter_mut() {
        let kept = kept_keys.contains(note.key.as_str())
            && !new_jobs.iter().any(|j| j.key == note.key)
            && note.reason.is_none();
        if kept {
            note.reason = Some(format!(
                "kept from attempt {} (run #{})",
                old.attempt, old.number
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_workflow::parse_workflow;
    use gantry_workflow::plan::{JobKey, RunContext, plan_run};
    use gantry_workflow::trigger::Event;

    const WORKFLOW: &str = "\
on: push
jobs:
  build:
    runs-on: linux
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps: [run: make]
  test:
    strategy:
      matrix:
        n: [1, 2]
    runs-on: linux
    steps: [run: test]
  deploy:
    needs: [build, test]
    runs-on: linux
    steps: [run: 'echo ${{ needs.build.outputs.version }}']
";

    fn graph() -> RunGraph {
        let workflows = vec![
            parse_workflow(".github/workflows/ci.yml", WORKFLOW)
                .workflow
                .expect("parses"),
        ];
        let ctx = RunContext::new(Event {
            name: "push".into(),
            git_ref: Some("refs/heads/main".into()),
            ..Event::default()
        });
        let plan = plan_run(&workflows, &ctx);
        RunGraph::new(&plan.workflows[0], &workflows).expect("runnable")
    }

    fn finish(
        key: &str,
        leg: usize,
        conclusion: Conclusion,
        outputs: &[(&str, &str)],
    ) -> GraphInput {
        GraphInput::Finish {
            key: JobKey::new(key.to_owned()),
            leg,
            conclusion,
            outputs: outputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn started(actions: &[Action]) -> Vec<(String, usize)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::StartLeg(s) => Some((s.key.as_str().to_owned(), s.leg)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_the_failed_leg_runs_again_and_kept_outputs_reach_dependents() {
        let old = vec![
            finish("build", 0, Conclusion::Success, &[("version", "1.2.3")]),
            finish("test", 0, Conclusion::Success, &[]),
            finish("test", 1, Conclusion::Failure, &[]),
        ];
        let kept = successful_legs(&old);
        assert_eq!(kept.len(), 2);
        let mut graph = graph();
        let (journal, actions) = drive_with_kept(&mut graph, &kept);
        assert_eq!(started(&actions), vec![("test".to_owned(), 1)]);
        assert_eq!(journal.len(), 2);

        // The failed leg passes this time: deploy starts and sees the kept output.
        graph.apply(&finish("test", 1, Conclusion::Success, &[]));
        let next = graph.next_actions();
        let deploy = next
            .iter()
            .find_map(|a| match a {
                Action::StartLeg(s) if s.key.as_str() == "deploy" => Some(s),
                _ => None,
            })
            .expect("deploy starts");
        assert_eq!(deploy.spec.needs["build"]["outputs"]["version"], "1.2.3");
    }

    #[test]
    fn the_journal_of_kept_legs_replays_to_the_same_graph() {
        let old = vec![
            finish("build", 0, Conclusion::Success, &[("version", "9")]),
            finish("test", 0, Conclusion::Failure, &[]),
            finish("test", 1, Conclusion::Success, &[]),
        ];
        let mut driven = graph();
        let (journal, _) = drive_with_kept(&mut driven, &successful_legs(&old));
        let workflows = vec![
            parse_workflow(".github/workflows/ci.yml", WORKFLOW)
                .workflow
                .expect("parses"),
        ];
        let ctx = RunContext::new(Event {
            name: "push".into(),
            git_ref: Some("refs/heads/main".into()),
            ..Event::default()
        });
        let plan = plan_run(&workflows, &ctx);
        let mut replayed =
            RunGraph::replay(&plan.workflows[0], &workflows, &journal).expect("replays");
        replayed.next_actions();
        assert_eq!(replayed.jobs(), driven.jobs());
        // Both now only wait for leg 0 of test.
        driven.apply(&finish("test", 0, Conclusion::Success, &[]));
        replayed.apply(&finish("test", 0, Conclusion::Success, &[]));
        assert_eq!(driven.next_actions(), replayed.next_actions());
    }

    #[test]
    fn a_leg_that_failed_first_is_not_kept_even_if_a_later_finish_says_success() {
        let journal = vec![
            finish("build", 0, Conclusion::Failure, &[]),
            finish("build", 0, Conclusion::Success, &[]),
        ];
        assert!(successful_legs(&journal).is_empty());
    }
}
