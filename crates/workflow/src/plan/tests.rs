//! Tests of the planner and the run graph: the oracles (act's planner cases, the matrix
//! expansion cases and the trigger cases, all through the real YAML parser) and the run
//! graph's rules (needs, skips, status functions, fail-fast, max-parallel, dynamic matrices,
//! reusable workflows, cancellation).

use std::collections::HashMap;

use gantry_protocol::Conclusion;
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::*;
use crate::model::Workflow;
use crate::parse_workflow;
use crate::trigger::Event;

const ORACLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/oracles");

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{ORACLES}/{path}")).expect("oracle file");
    serde_json::from_str(&text).expect("oracle JSON")
}

/// Parses a workflow that must be valid.
fn workflow(file: &str, yaml: &str) -> Workflow {
    let parsed = parse_workflow(file, yaml);
    assert!(
        !parsed.has_errors(),
        "{file} has errors: {:#?}",
        parsed.diagnostics
    );
    parsed.workflow.expect("valid workflow")
}

fn push(git_ref: &str) -> RunContext {
    RunContext::new(Event {
        name: "push".into(),
        git_ref: Some(git_ref.into()),
        ..Event::default()
    })
}

fn keys(plan: &WorkflowPlan) -> Vec<&str> {
    plan.jobs.iter().map(|j| j.key.as_str()).collect()
}

fn legs(job: &PlannedJob) -> Vec<Value> {
    match &job.matrix {
        PlannedMatrix::Legs { legs } => legs
            .iter()
            .map(|l| Value::Object(l.matrix.clone()))
            .collect(),
        PlannedMatrix::RunTime { reason } => panic!("{}: run-time matrix: {reason}", job.key),
    }
}

fn graph_for(workflows: &[Workflow], ctx: &RunContext) -> RunGraph {
    let plan = plan_run(workflows, ctx);
    RunGraph::new(&plan.workflows[0], workflows).expect("runnable")
}

fn one(yaml: &str) -> (Vec<Workflow>, RunGraph) {
    let workflows = vec![workflow(".github/workflows/ci.yml", yaml)];
    let graph = graph_for(&workflows, &push("refs/heads/main"));
    (workflows, graph)
}

/// A compact view of actions: `start a`, `start test#1`, `cancel test#2`, `skip b: reason`,
/// `fail b: reason`, `done b: success`.
fn describe(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::StartLeg(s) if s.spec.matrix.is_null() => format!("start {}", s.key),
            Action::StartLeg(s) => format!("start {}#{}", s.key, s.leg),
            Action::CancelLeg { key, leg, .. } => format!("cancel {key}#{leg}"),
            Action::JobSkipped { key, reason, .. } => format!("skip {key}: {reason}"),
            Action::JobFailed { key, reason, .. } => format!("fail {key}: {reason}"),
            Action::JobFinished {
                key, conclusion, ..
            } => format!("done {key}: {conclusion}"),
        })
        .collect()
}

fn starts(actions: &[Action]) -> Vec<&LegStart> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartLeg(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

fn ok(graph: &mut RunGraph, key: &str, leg: usize) -> Vec<String> {
    graph.finish(
        &JobKey::from(key),
        leg,
        Conclusion::Success,
        IndexMap::new(),
    );
    describe(&graph.next_actions())
}

fn fail(graph: &mut RunGraph, key: &str, leg: usize) -> Vec<String> {
    graph.finish(
        &JobKey::from(key),
        leg,
        Conclusion::Failure,
        IndexMap::new(),
    );
    describe(&graph.next_actions())
}

fn outputs(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Oracles

/// act's `TestGraph*` planner cases: the stages of jobs act plans for an event, or the error
/// for an unresolvable needs graph.
#[test]
fn oracle_act_planner_cases() {
    let doc = read_json("act-runner-cases.json");
    let cases = doc["planner_cases"].as_array().expect("planner_cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let copied = case["copied_to"].as_str().expect("copied_to");
        let path = format!(
            "{ORACLES}/{}",
            copied.strip_prefix("oracles/").expect("under oracles/")
        );
        let mut files: Vec<std::path::PathBuf> = if std::path::Path::new(&path).is_dir() {
            std::fs::read_dir(&path)
                .expect("folder")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
                .collect()
        } else {
            vec![path.into()]
        };
        files.sort();
        let workflows: Vec<Workflow> = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).expect("workflow");
                let name = format!(
                    ".github/workflows/{}",
                    f.file_name().expect("name").to_string_lossy()
                );
                // Invalid workflows (an unknown need) still give a model to plan.
                parse_workflow(&name, &text).workflow.expect("a model")
            })
            .collect();
        let event = case["event"].as_str().expect("event");
        let ctx = RunContext::new(Event {
            name: event.into(),
            git_ref: Some("refs/heads/master".into()),
            ..Event::default()
        });
        let plan = plan_run(&workflows, &ctx);
        let stages: Vec<Vec<String>> = plan
            .runnable()
            .flat_map(|w| w.stages())
            .map(|s| s.iter().map(|k| k.as_str().to_owned()).collect())
            .collect();
        let errors: Vec<&String> = plan
            .workflows
            .iter()
            .filter(|w| w.triggered)
            .flat_map(|w| &w.errors)
            .collect();
        let expected_stages: Vec<Vec<String>> =
            serde_json::from_value(case["expected_stages"].clone()).expect("stages");
        let ok = match case["expected_error"].as_str() {
            Some(_) => !errors.is_empty() && stages.is_empty(),
            None => errors.is_empty() && stages == expected_stages,
        };
        if !ok {
            failures.push(format!("{id}: stages {stages:?}, errors {errors:?}"));
        }
    }
    let passed = cases.len() - failures.len();
    println!(
        "act-runner-cases.json planner_cases: {passed}/{} pass ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(failures.is_empty());
}

#[test]
fn unknown_need_is_reported_with_the_job_names() {
    let parsed = parse_workflow(
        ".github/workflows/x.yml",
        "on: push\njobs:\n  second:\n    needs: first\n    runs-on: x\n    steps: [run: a]\n",
    );
    let plan = plan_run(&[parsed.workflow.expect("model")], &push("refs/heads/main"));
    assert_eq!(
        plan.workflows[0].errors,
        [
            "unable to build the needs graph: job `second` needs `first`, which is not a job of this workflow"
        ]
    );
    assert!(!plan.workflows[0].is_runnable());
}

/// Every case of `matrix-expansion.json` through the YAML parser, the planner (legs) and the
/// run graph (fail-fast, max-parallel).
#[test]
fn oracle_matrix_expansion_through_the_planner() {
    let doc = read_json("matrix-expansion.json");
    let cases = doc["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("id");
        if let Err(e) = check_matrix_case(case) {
            failures.push(format!("{id}: {e}"));
        }
    }
    let passed = cases.len() - failures.len();
    println!(
        "matrix-expansion.json through plan_run: {passed}/{} pass ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}

fn check_matrix_case(case: &Value) -> Result<(), String> {
    let yaml = case["workflow"].as_str().ok_or("no workflow")?;
    let workflows = vec![workflow(".github/workflows/matrix.yml", yaml)];
    let ctx = push("refs/heads/main");
    let plan = plan_run(&workflows, &ctx);
    let wf = &plan.workflows[0];
    if !wf.is_runnable() {
        return Err(format!("not runnable: {} {:?}", wf.reason, wf.errors));
    }
    let job = &wf.jobs[0];
    let got = legs(job);
    let expected = &case["expected"];
    if let Some(count) = expected["count"].as_u64()
        && got.len() as u64 != count
    {
        return Err(format!("{} legs, expected {count}: {got:?}", got.len()));
    }
    let ordered = expected["order_significant"].as_bool().unwrap_or(false);
    if let Some(combinations) = expected["combinations"].as_array() {
        let same = if ordered {
            &got == combinations
        } else {
            let mut rest = got.clone();
            combinations.iter().all(|c| {
                rest.iter()
                    .position(|g| g == c)
                    .map(|i| rest.remove(i))
                    .is_some()
            }) && rest.is_empty()
        };
        if !same {
            return Err(format!("legs {got:?}, expected {combinations:?}"));
        }
    }
    for present in expected["present"].as_array().into_iter().flatten() {
        if !got.contains(present) {
            return Err(format!("{present} missing from {got:?}"));
        }
    }
    for absent in expected["absent"].as_array().into_iter().flatten() {
        if got.contains(absent) {
            return Err(format!("{absent} present in {got:?}"));
        }
    }
    let graph = RunGraph::new(wf, &workflows).map_err(|e| e.to_string())?;
    let JobInstance::Run {
        legs: specs,
        fail_fast,
        max_parallel,
        ..
    } = graph.instantiate(&job.key)
    else {
        return Err("the job does not instantiate to legs".to_owned());
    };
    if specs.len() != got.len() {
        return Err(format!("{} specs for {} legs", specs.len(), got.len()));
    }
    if let Some(expected) = expected["fail_fast"].as_bool()
        && fail_fast != expected
    {
        return Err(format!("fail-fast {fail_fast}, expected {expected}"));
    }
    if let Some(expected) = expected["max_parallel"].as_u64() {
        // GitHub's max-parallel, bounded by the number of legs.
        let expected = (expected as usize).min(specs.len());
        if max_parallel != expected {
            return Err(format!("max-parallel {max_parallel}, expected {expected}"));
        }
    }
    Ok(())
}

/// The `trigger_cases` of `filter-patterns.json`, with workflows parsed from YAML (the `on:`
/// value is JSON, which is YAML) and planned.
#[test]
fn oracle_trigger_cases_through_plan_run() {
    let doc = read_json("filter-patterns.json");
    let cases = doc["trigger_cases"].as_array().expect("trigger_cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let yaml = format!(
            "on: {}\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
            case["on"]
        );
        let workflows = vec![workflow(".github/workflows/trigger.yml", &yaml)];
        let name = case["event"].as_str().expect("event");
        let git_ref = case["ref"].as_str().expect("ref");
        let changed = case["changed_files"].as_array().map(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        });
        let event = if name == "pull_request" {
            Event {
                name: name.into(),
                action: Some("opened".into()),
                git_ref: Some("refs/pull/1/merge".into()),
                base_ref: Some(git_ref.into()),
                changed_paths: changed,
                ..Event::default()
            }
        } else {
            Event {
                name: name.into(),
                git_ref: Some(git_ref.into()),
                changed_paths: changed,
                ..Event::default()
            }
        };
        let plan = plan_run(&workflows, &RunContext::new(event));
        let wf = &plan.workflows[0];
        let expected = case["runs"].as_bool().expect("runs");
        let runs = wf.is_runnable() && !wf.jobs.is_empty();
        if runs != expected {
            failures.push(format!("{id}: {}, expected runs={expected}", wf.reason));
        }
    }
    let passed = cases.len() - failures.len();
    println!(
        "filter-patterns.json trigger_cases through plan_run: {passed}/{} pass ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(failures.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Planning

#[test]
fn jobs_come_in_needs_order_with_reasons_for_static_skips() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        r#"
name: CI
on: [push, pull_request]
jobs:
  deploy:
    needs: [test]
    if: github.ref == 'refs/heads/release'
    runs-on: ubuntu-latest
    steps: [run: deploy]
  test:
    needs: lint
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, macos-latest]
        node: [18, 20]
    steps: [run: test]
  lint:
    runs-on: ubuntu-latest
    steps: [run: lint]
  notify:
    needs: deploy
    runs-on: ubuntu-latest
    steps: [run: notify]
  report:
    needs: deploy
    if: always()
    runs-on: ubuntu-latest
    steps: [run: report]
"#,
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    let wf = &plan.workflows[0];
    assert!(wf.is_runnable(), "{wf:?}");
    assert_eq!(keys(wf), ["lint", "test", "deploy", "notify", "report"]);
    let test = wf.job(&"test".into()).expect("test");
    let PlannedMatrix::Legs { legs } = &test.matrix else {
        panic!("static legs");
    };
    let names: Vec<&str> = legs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "test (ubuntu-latest, 18)",
            "test (ubuntu-latest, 20)",
            "test (macos-latest, 18)",
            "test (macos-latest, 20)"
        ]
    );
    assert_eq!(
        wf.job(&"deploy".into())
            .and_then(|j| j.skipped_reason.as_deref()),
        Some("`if: github.ref == 'refs/heads/release'` is false")
    );
    assert_eq!(
        wf.job(&"notify".into())
            .and_then(|j| j.skipped_reason.as_deref()),
        Some("needed job `deploy` was skipped")
    );
    assert_eq!(
        wf.job(&"report".into())
            .and_then(|j| j.skipped_reason.clone()),
        None
    );
    assert_eq!(
        wf.job(&"lint".into())
            .and_then(|j| j.skipped_reason.clone()),
        None
    );
    assert_eq!(
        wf.stages(),
        vec![
            vec![JobKey::from("lint")],
            vec!["test".into()],
            vec!["deploy".into()],
            vec!["notify".into(), "report".into()]
        ]
    );
}

#[test]
fn a_condition_on_needs_outputs_is_left_to_the_run() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    if: needs.a.outputs.go == 'yes'\n    runs-on: x\n    steps: [run: b]\n  c:\n    needs: a\n    if: failure()\n    runs-on: x\n    steps: [run: c]\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    let wf = &plan.workflows[0];
    assert_eq!(wf.jobs[1].skipped_reason, None);
    // `failure()` depends on how `a` ends: not a static skip either.
    assert_eq!(wf.jobs[2].skipped_reason, None);
}

#[test]
fn a_matrix_from_needs_is_expanded_at_run_time() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  setup:\n    runs-on: x\n    outputs:\n      matrix: ${{ steps.m.outputs.matrix }}\n    steps:\n      - id: m\n        run: echo matrix=x >> $GITHUB_OUTPUT\n  test:\n    needs: setup\n    runs-on: x\n    strategy:\n      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}\n    steps: [run: test]\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert_eq!(
        plan.workflows[0].jobs[1].matrix,
        PlannedMatrix::RunTime {
            reason: "expanded at run time because the matrix uses `needs`".to_owned()
        }
    );
}

#[test]
fn callable_only_workflows_are_never_triggered() {
    let workflows = vec![workflow(
        ".github/workflows/reusable.yml",
        "on: workflow_call\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert!(!plan.workflows[0].triggered);
    assert!(plan.workflows[0].reason.contains("workflow_call"));
    assert!(plan.workflows[0].jobs.is_empty());
}

#[test]
fn github_context_and_run_name() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "name: CI\nrun-name: Build ${{ github.ref_name }} by @${{ github.actor }}\non: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n",
    )];
    let mut ctx = push("refs/tags/v1.2");
    ctx.repository = "octo/hello".into();
    ctx.actor = "mona".into();
    ctx.sha = "a".repeat(40);
    let plan = plan_run(&workflows, &ctx);
    let wf = &plan.workflows[0];
    assert_eq!(wf.run_name, "Build v1.2 by @mona");
    let g = &wf.github;
    assert_eq!(g["event_name"], "push");
    assert_eq!(g["ref"], "refs/tags/v1.2");
    assert_eq!(g["ref_name"], "v1.2");
    assert_eq!(g["ref_type"], "tag");
    assert_eq!(g["repository_owner"], "octo");
    assert_eq!(g["workflow"], "CI");
    assert_eq!(
        g["workflow_ref"],
        "octo/hello/.github/workflows/ci.yml@refs/tags/v1.2"
    );
    assert_eq!(g["api_url"], "https://api.github.com");
    assert_eq!(g["run_number"], "1");
    assert_eq!(g["sha"], "a".repeat(40));
}

const DISPATCH: &str = r#"
on:
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [info, debug]
        default: info
      dry:
        type: boolean
        default: false
      count:
        type: number
        required: true
      who:
        description: a string
jobs:
  a:
    if: inputs.dry
    runs-on: x
    steps: [run: a]
"#;

#[test]
fn a_matrix_key_from_needs_outputs_is_evaluated_at_run_time() {
    // act's evalmatrixneeds2: the key and the values of a vector both come from needs.
    let (workflows, mut graph) = one(r#"
on: push
jobs:
  prepare:
    runs-on: x
    outputs:
      matrix: ${{ steps.r1.outputs.matrix }}
      helix: steady
    steps:
      - id: r1
        run: echo
  evalm:
    needs: prepare
    runs-on: x
    strategy:
      matrix:
        ${{ needs.prepare.outputs.helix }}: |-
          ${{ fromJson(needs.prepare.outputs.matrix) }}
    steps: [run: t]
"#);
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert_eq!(
        plan.workflows[0].jobs[1].matrix,
        PlannedMatrix::RunTime {
            reason: "expanded at run time because the matrix uses `needs`".to_owned()
        }
    );
    assert_eq!(describe(&graph.next_actions()), ["start prepare"]);
    graph.finish(
        &"prepare".into(),
        0,
        Conclusion::Success,
        outputs(&[("matrix", r#"["a", "b"]"#), ("helix", "steady")]),
    );
    let actions = graph.next_actions();
    let matrices: Vec<&Value> = starts(&actions).iter().map(|s| &s.spec.matrix).collect();
    assert_eq!(matrices, [&json!({"steady": "a"}), &json!({"steady": "b"})]);
}

#[test]
fn a_matrix_key_using_needs_alone_makes_the_matrix_run_time() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    strategy:\n      matrix:\n        ${{ needs.a.outputs.key }}: [1, 2]\n    steps: [run: b]\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert!(matches!(
        plan.workflows[0].jobs[1].matrix,
        PlannedMatrix::RunTime { .. }
    ));
}

#[test]
fn insert_in_a_matrix_merges_mappings_when_planning() {
    // act's evalmatrix-merge-map.
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        r#"
on: push
jobs:
  a:
    strategy:
      matrix:
        a:
        - env:
              key1: val1
              ${{insert}}:
                 key2: val2
              ${{ insert }}: ${{fromJSON('{"key3":"val3"}')}}
    runs-on: x
    steps: [run: a]
"#,
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert_eq!(
        legs(&plan.workflows[0].jobs[0]),
        [json!({"a": {"env": {"key1": "val1", "key2": "val2", "key3": "val3"}}})]
    );
}

#[test]
fn an_expression_item_of_a_matrix_vector_is_spliced_into_it() {
    // act's evalmatrix-merge-array: one written leg and two from the expression.
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        r#"
on: push
jobs:
  a:
    strategy:
      matrix:
        a:
        - env:
              key1: ${{'val'}}1
        - ${{fromJSON('[{"env":{"key2":"val2"}},{"env":{"key3":"val3"}}]')}}
    runs-on: x
    steps: [run: a]
"#,
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert_eq!(
        legs(&plan.workflows[0].jobs[0]),
        [
            json!({"a": {"env": {"key1": "val1"}}}),
            json!({"a": {"env": {"key2": "val2"}}}),
            json!({"a": {"env": {"key3": "val3"}}}),
        ]
    );
}

#[test]
fn a_bad_insert_in_a_matrix_is_a_job_error() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        os: [x]\n        ${{ insert }}: ${{ fromJSON('{\"os\":[1]}') }}\n    runs-on: x\n    steps: [run: a]\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert_eq!(
        plan.workflows[0].jobs[0].error.as_deref(),
        Some("strategy.matrix: `os` is already defined")
    );
}

const CALLABLE: &str = r#"
on:
  push:
  workflow_call:
    inputs:
      required:
        type: string
        required: true
      with_default:
        type: string
        default: default-${{ inputs.required }}
      flag:
        type: boolean
      count:
        type: number
jobs:
  test:
    if: inputs.flag
    runs-on: x
    steps: [run: t]
"#;

fn called_directly(file: &str, yaml: &str, inputs: &[(&str, &str)]) -> WorkflowPlan {
    let workflows = vec![workflow(file, yaml)];
    let mut ctx = RunContext::new(Event {
        name: "workflow_call".into(),
        git_ref: Some("refs/heads/main".into()),
        ..Event::default()
    });
    ctx.inputs = inputs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    plan_run(&workflows, &ctx).workflows.remove(0)
}

#[test]
fn the_workflow_call_event_runs_a_callable_workflow_with_typed_inputs() {
    let plan = called_directly(
        ".github/workflows/reusable.yml",
        CALLABLE,
        &[("required", "yes"), ("flag", "true"), ("count", "2")],
    );
    assert!(plan.is_runnable(), "{:?}", plan.errors);
    assert_eq!(
        plan.reason,
        "triggered by `workflow_call`: runs as if another workflow called it"
    );
    assert_eq!(
        plan.inputs,
        json!({"required": "yes", "with_default": "default-yes", "flag": true, "count": 2})
    );
    assert_eq!(plan.github["event_name"], "workflow_call");
    assert_eq!(plan.jobs[0].skipped_reason, None);
    // A callable-only workflow runs too, and its jobs see the inputs.
    let only = CALLABLE.replace(
        "  push:
", "",
    );
    let plan = called_directly(
        ".github/workflows/reusable.yml",
        &only,
        &[("required", "x")],
    );
    assert!(plan.is_runnable(), "{:?}", plan.errors);
    assert_eq!(
        plan.jobs[0].skipped_reason.as_deref(),
        Some("`if: inputs.flag` is false")
    );
}

#[test]
fn the_workflow_call_event_reports_input_mistakes_and_needs_the_trigger() {
    let plan = called_directly(
        ".github/workflows/reusable.yml",
        CALLABLE,
        &[("flag", "maybe"), ("colour", "red")],
    );
    assert!(!plan.is_runnable());
    assert_eq!(
        plan.errors,
        [
            "input `colour`: not declared (declared: required, with_default, flag, count)",
            "input `required`: required, but not given (put it in the payload's `inputs` or \
             pass `--input NAME=VALUE`)",
            "input `flag`: expected a boolean (true or false), got \"maybe\"",
        ]
    );
    let plan = called_directly(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n",
        &[],
    );
    assert!(!plan.triggered);
    assert_eq!(
        plan.reason,
        "no `on: workflow_call` trigger: the workflow cannot be called"
    );
}

fn dispatch(inputs: &[(&str, &str)]) -> WorkflowPlan {
    let workflows = vec![workflow(".github/workflows/d.yml", DISPATCH)];
    let mut ctx = RunContext::new(Event {
        name: "workflow_dispatch".into(),
        git_ref: Some("refs/heads/main".into()),
        ..Event::default()
    });
    ctx.inputs = inputs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    plan_run(&workflows, &ctx).workflows.remove(0)
}

#[test]
fn dispatch_inputs_are_typed_with_defaults() {
    let plan = dispatch(&[("count", "3"), ("dry", "true")]);
    assert!(plan.is_runnable(), "{:?}", plan.errors);
    assert_eq!(
        plan.inputs,
        json!({"level": "info", "dry": true, "count": 3, "who": ""})
    );
    assert_eq!(plan.github["event"]["inputs"]["dry"], "true");
    assert_eq!(plan.jobs[0].skipped_reason, None);
    let plan = dispatch(&[("count", "3")]);
    assert_eq!(
        plan.jobs[0].skipped_reason.as_deref(),
        Some("`if: inputs.dry` is false")
    );
}

#[test]
fn dispatch_input_mistakes_are_all_reported() {
    let plan = dispatch(&[("level", "trace"), ("dry", "maybe"), ("colour", "red")]);
    assert!(!plan.is_runnable());
    assert_eq!(
        plan.errors,
        [
            "input `colour`: not declared (declared: level, dry, count, who)",
            "input `level`: `trace` is not one of the options: info, debug",
            "input `dry`: expected a boolean (true or false), got \"maybe\"",
            "input `count`: required, but not given (pass `--input NAME=VALUE`)",
        ]
    );
    let plan = dispatch(&[("count", "many")]);
    assert_eq!(
        plan.errors,
        ["input `count`: expected a number, got \"many\""]
    );
}

// ---------------------------------------------------------------------------------------------
// The run graph

#[test]
fn needs_chain_runs_in_order() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    steps: [run: b]\n  c:\n    needs: [a, b]\n    runs-on: x\n    steps: [run: c]\n",
    );
    assert_eq!(describe(&graph.next_actions()), ["start a"]);
    assert_eq!(graph.ready(), Vec::<JobKey>::new());
    assert!(
        graph.next_actions().is_empty(),
        "nothing new until a leg ends"
    );
    assert_eq!(ok(&mut graph, "a", 0), ["done a: success", "start b"]);
    assert_eq!(ok(&mut graph, "b", 0), ["done b: success", "start c"]);
    assert!(!graph.is_finished());
    assert_eq!(graph.conclusion(), None);
    assert_eq!(ok(&mut graph, "c", 0), ["done c: success"]);
    assert!(graph.is_finished());
    assert_eq!(graph.conclusion(), Some(Conclusion::Success));
}

#[test]
fn failure_skips_dependents_transitively() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    steps: [run: b]\n  c:\n    needs: b\n    runs-on: x\n    steps: [run: c]\n  d:\n    runs-on: x\n    steps: [run: d]\n",
    );
    assert_eq!(describe(&graph.next_actions()), ["start a", "start d"]);
    assert_eq!(
        fail(&mut graph, "a", 0),
        [
            "done a: failure",
            "skip b: needed job `a` failed",
            "skip c: needed job `b` was skipped"
        ]
    );
    assert_eq!(graph.result(&"b".into()), Some(Conclusion::Skipped));
    assert_eq!(ok(&mut graph, "d", 0), ["done d: success"]);
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

#[test]
fn always_and_failure_dependents_run_after_a_failure() {
    let (_, mut graph) = one(r#"
on: push
jobs:
  build:
    runs-on: x
    steps: [run: a]
  on-failure:
    needs: build
    if: failure()
    runs-on: x
    steps: [run: b]
  cleanup:
    needs: build
    if: ${{ always() }}
    runs-on: x
    steps: [run: c]
  after-cleanup:
    needs: cleanup
    runs-on: x
    steps: [run: d]
  named:
    needs: [build, cleanup]
    if: success('cleanup')
    runs-on: x
    steps: [run: e]
  on-success:
    needs: build
    if: success()
    runs-on: x
    steps: [run: f]
"#);
    graph.next_actions();
    let actions = fail(&mut graph, "build", 0);
    assert_eq!(
        actions,
        [
            "done build: failure",
            "skip on-success: `if: success()` is false",
            "start on-failure",
            "start cleanup"
        ]
    );
    ok(&mut graph, "on-failure", 0);
    let actions = ok(&mut graph, "cleanup", 0);
    // `after-cleanup` has `build` (failed) above it: its implicit success() is false.
    assert_eq!(
        actions,
        [
            "done cleanup: success",
            "skip after-cleanup: a job above it in the needs graph did not succeed",
            "start named"
        ]
    );
}

#[test]
fn a_bad_if_fails_the_job_naming_the_field() {
    let (_, mut graph) =
        one("on: push\njobs:\n  a:\n    if: fromJSON('{')\n    runs-on: x\n    steps: [run: a]\n");
    let actions = describe(&graph.next_actions());
    assert_eq!(actions.len(), 1);
    assert!(
        actions[0].starts_with("fail a: `if:` could not be evaluated:"),
        "{actions:?}"
    );
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

const MATRIX3: &str = "on: push\njobs:\n  test:\n    runs-on: x\n    strategy:\n      fail-fast: FAILFAST\n      max-parallel: PARALLEL\n      matrix:\n        n: [1, 2, 3]\n    steps: [run: t]\n";

fn matrix3(fail_fast: bool, max_parallel: u32) -> RunGraph {
    let yaml = MATRIX3
        .replace("FAILFAST", &fail_fast.to_string())
        .replace("PARALLEL", &max_parallel.to_string());
    one(&yaml).1
}

#[test]
fn fail_fast_cancels_running_and_waiting_legs() {
    let mut graph = matrix3(true, 2);
    let first = graph.next_actions();
    assert_eq!(describe(&first), ["start test#0", "start test#1"]);
    let names: Vec<&str> = starts(&first)
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    assert_eq!(names, ["test (1)", "test (2)"]);
    assert_eq!(starts(&first)[1].spec.key, "test.1");
    assert_eq!(starts(&first)[1].spec.strategy.job_index, 1);
    assert_eq!(starts(&first)[1].spec.strategy.job_total, 3);
    assert_eq!(fail(&mut graph, "test", 0), ["cancel test#1"]);
    graph.finish(&"test".into(), 1, Conclusion::Cancelled, IndexMap::new());
    assert_eq!(describe(&graph.next_actions()), ["done test: failure"]);
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

#[test]
fn without_fail_fast_the_other_legs_go_on() {
    let mut graph = matrix3(false, 3);
    assert_eq!(
        describe(&graph.next_actions()),
        ["start test#0", "start test#1", "start test#2"]
    );
    assert!(fail(&mut graph, "test", 1).is_empty());
    assert!(ok(&mut graph, "test", 0).is_empty());
    assert_eq!(ok(&mut graph, "test", 2), ["done test: failure"]);
}

#[test]
fn max_parallel_limits_running_legs() {
    let mut graph = matrix3(false, 1);
    assert_eq!(describe(&graph.next_actions()), ["start test#0"]);
    assert_eq!(graph.max_parallel(&"test".into()), Some(1));
    assert_eq!(ok(&mut graph, "test", 0), ["start test#1"]);
    assert_eq!(ok(&mut graph, "test", 1), ["start test#2"]);
    assert_eq!(ok(&mut graph, "test", 2), ["done test: success"]);
}

#[test]
fn continue_on_error_legs_neither_fail_fast_nor_fail_the_job() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  test:\n    runs-on: x\n    continue-on-error: ${{ matrix.n == 2 }}\n    strategy:\n      matrix:\n        n: [1, 2]\n    steps: [run: t]\n",
    );
    let actions = graph.next_actions();
    let specs = starts(&actions);
    assert!(!specs[0].spec.continue_on_error);
    assert!(specs[1].spec.continue_on_error);
    assert!(fail(&mut graph, "test", 1).is_empty());
    assert_eq!(ok(&mut graph, "test", 0), ["done test: success"]);
}

#[test]
fn matrix_outputs_last_leg_to_set_them_wins() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  test:\n    runs-on: x\n    outputs:\n      v: ${{ steps.s.outputs.v }}\n    strategy:\n      matrix:\n        n: [1, 2, 3]\n    steps: [run: t]\n  after:\n    needs: test\n    runs-on: x\n    steps: [run: t]\n",
    );
    graph.next_actions();
    let t = JobKey::from("test");
    graph.finish(&t, 2, Conclusion::Success, outputs(&[("v", "two")]));
    graph.finish(&t, 0, Conclusion::Success, outputs(&[("v", "zero")]));
    graph.finish(&t, 1, Conclusion::Success, outputs(&[("v", "")]));
    let actions = graph.next_actions();
    let spec = &starts(&actions)[0].spec;
    assert_eq!(
        spec.needs,
        json!({"test": {"result": "success", "outputs": {"v": "zero"}}})
    );
}

#[test]
fn dynamic_matrix_from_needs_outputs() {
    let (_, mut graph) = one(r#"
on: push
jobs:
  setup:
    runs-on: x
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
      label: ${{ steps.m.outputs.label }}
    steps:
      - id: m
        run: echo
  test:
    needs: setup
    name: Test on ${{ matrix.os }}
    runs-on: ${{ needs.setup.outputs.label }}
    timeout-minutes: ${{ matrix.os == 'b' && 5 || 10 }}
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    steps: [run: t]
"#);
    assert_eq!(describe(&graph.next_actions()), ["start setup"]);
    graph.finish(
        &"setup".into(),
        0,
        Conclusion::Success,
        outputs(&[("matrix", r#"{"os": ["a", "b"]}"#), ("label", "big")]),
    );
    let actions = graph.next_actions();
    let specs = starts(&actions);
    let names: Vec<&str> = specs.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["Test on a", "Test on b"]);
    assert_eq!(specs[0].spec.runs_on, ["big"]);
    assert_eq!(specs[0].spec.matrix, json!({"os": "a"}));
    assert_eq!(specs[0].spec.timeout_minutes, 10.0);
    assert_eq!(specs[1].spec.timeout_minutes, 5.0);
}

#[test]
fn a_bad_dynamic_matrix_fails_the_job_with_the_field() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  setup:\n    runs-on: x\n    steps: [run: a]\n  test:\n    needs: setup\n    runs-on: x\n    strategy:\n      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}\n    steps: [run: t]\n",
    );
    graph.next_actions();
    graph.finish(
        &"setup".into(),
        0,
        Conclusion::Success,
        outputs(&[("matrix", r#"{"os": []}"#)]),
    );
    assert_eq!(
        describe(&graph.next_actions()),
        [
            "done setup: success",
            "fail test: strategy.matrix: Matrix vector 'os' does not contain any values"
        ]
    );
}

#[test]
fn job_spec_carries_env_defaults_container_and_services() {
    let (_, mut graph) = one(r#"
on: push
env:
  WF: one
defaults:
  run:
    shell: bash
    working-directory: wf
jobs:
  a:
    runs-on: [self-hosted, "${{ github.event_name }}"]
    env:
      JOB: ${{ github.ref }}
    defaults:
      run:
        working-directory: job
    container:
      image: node:${{ github.event_name == 'push' && '20' || '18' }}
      options: --cpus 1
      credentials:
        username: me
        password: ${{ secrets.PASSWORD }}
    services:
      redis:
        image: redis:7
        ports: ['6379:6379']
    steps: [run: a]
"#);
    let actions = graph.next_actions();
    let spec = &starts(&actions)[0].spec;
    assert_eq!(spec.runs_on, ["self-hosted", "push"]);
    assert_eq!(spec.workflow_env["WF"], "one");
    assert_eq!(spec.env["JOB"], "${{ github.ref }}");
    assert_eq!(spec.defaults.shell.as_deref(), Some("bash"));
    assert_eq!(spec.defaults.working_directory.as_deref(), Some("job"));
    let container = spec.container.as_ref().expect("container");
    assert_eq!(container.image, "node:20");
    assert_eq!(container.options.as_deref(), Some("--cpus 1"));
    assert_eq!(
        container.credentials,
        Some(json!({"username": "me", "password": "${{ secrets.PASSWORD }}"}))
    );
    assert_eq!(spec.services["redis"].ports, ["6379:6379"]);
    assert_eq!(spec.timeout_minutes, 360.0);
    assert_eq!(spec.matrix, Value::Null);
    assert_eq!(spec.key, "a");
}

#[test]
fn cancel_run_cancels_running_legs_and_keeps_always_jobs() {
    let (_, mut graph) = one(
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: a]\n  b:\n    needs: a\n    runs-on: x\n    steps: [run: b]\n  cleanup:\n    needs: a\n    if: always()\n    runs-on: x\n    steps: [run: c]\n  watcher:\n    if: always()\n    runs-on: x\n    steps: [run: w]\n",
    );
    assert_eq!(
        describe(&graph.next_actions()),
        ["start a", "start watcher"]
    );
    graph.cancel_run();
    assert!(graph.is_cancelled());
    // `watcher` (if: always()) keeps running.
    assert_eq!(describe(&graph.next_actions()), ["cancel a#0"]);
    graph.finish(&"a".into(), 0, Conclusion::Cancelled, IndexMap::new());
    assert_eq!(
        describe(&graph.next_actions()),
        [
            "done a: cancelled",
            "skip b: the run was cancelled",
            "start cleanup"
        ]
    );
    assert_eq!(graph.result(&"b".into()), Some(Conclusion::Cancelled));
    ok(&mut graph, "cleanup", 0);
    ok(&mut graph, "watcher", 0);
    assert_eq!(graph.conclusion(), Some(Conclusion::Cancelled));
}

// ---------------------------------------------------------------------------------------------
// Reusable workflows

const REUSABLE: &str = r#"
name: Reusable
on:
  workflow_call:
    inputs:
      target:
        type: string
        required: true
      debug:
        type: boolean
        default: false
    secrets:
      token:
        required: false
    outputs:
      artifact:
        value: ${{ jobs.build.outputs.artifact }}
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      artifact: ${{ steps.b.outputs.artifact }}
    steps:
      - id: b
        run: echo ${{ inputs.target }}
  check:
    needs: build
    if: inputs.debug
    runs-on: ubuntu-latest
    steps: [run: check]
"#;

fn with_reusable(caller: &str) -> Vec<Workflow> {
    vec![
        workflow(".github/workflows/ci.yml", caller),
        workflow(".github/workflows/reusable.yml", REUSABLE),
    ]
}

#[test]
fn reusable_workflow_jobs_are_expanded_in_the_plan() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  call:
    name: Call
    uses: ./.github/workflows/reusable.yml
    with:
      target: ${{ github.ref_name }}
  matrix-call:
    strategy:
      matrix:
        os: [linux, mac]
    uses: ./.github/workflows/reusable.yml
    with:
      target: ${{ matrix.os }}
      debug: true
  after:
    needs: call
    runs-on: x
    steps:
      - run: echo ${{ needs.call.outputs.artifact }}
"#,
    );
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    assert!(!plan.workflows[1].triggered);
    let wf = &plan.workflows[0];
    assert_eq!(
        keys(wf),
        [
            "call",
            "call/build",
            "call/check",
            "matrix-call",
            "matrix-call (linux)/build",
            "matrix-call (linux)/check",
            "matrix-call (mac)/build",
            "matrix-call (mac)/check",
            "after"
        ]
    );
    let names: Vec<&str> = wf.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Call",
            "Call / build",
            "Call / check",
            "matrix-call",
            "matrix-call (linux) / build",
            "matrix-call (linux) / check",
            "matrix-call (mac) / build",
            "matrix-call (mac) / check",
            "after"
        ]
    );
    let check = wf.job(&"call/check".into()).expect("check");
    assert_eq!(
        check.skipped_reason.as_deref(),
        Some("`if: inputs.debug` is false")
    );
    assert_eq!(check.needs, [JobKey::from("call/build")]);
    assert_eq!(check.parent, Some(JobKey::from("call")));
    assert_eq!(
        wf.job(&"matrix-call (mac)/check".into())
            .and_then(|j| j.skipped_reason.clone()),
        None
    );
    assert_eq!(wf.stages().len(), 2);
}

#[test]
fn reusable_workflow_inputs_outputs_and_inherited_secrets() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  call:
    name: Call
    uses: ./.github/workflows/reusable.yml
    with:
      target: ${{ github.ref_name }}
    secrets: inherit
  after:
    needs: call
    runs-on: x
    steps: [run: echo]
"#,
    );
    let mut ctx = push("refs/heads/main");
    ctx.secret_names = vec!["A".into(), "B".into()];
    let mut graph = graph_for(&workflows, &ctx);
    let actions = graph.next_actions();
    assert_eq!(describe(&actions), ["start call/build"]);
    let start = starts(&actions)[0];
    assert_eq!(start.spec.name, "Call / build");
    assert_eq!(start.spec.inputs, json!({"target": "main", "debug": false}));
    assert_eq!(start.spec.workflow.file, ".github/workflows/reusable.yml");
    assert_eq!(start.spec.secret_names, ["A", "B"]);
    assert!(start.secrets.is_all());
    graph.finish(
        &"call/build".into(),
        0,
        Conclusion::Success,
        outputs(&[("artifact", "app.tar")]),
    );
    let actions = graph.next_actions();
    assert_eq!(
        describe(&actions),
        [
            "done call/build: success",
            "skip call/check: `if: inputs.debug` is false",
            "done call: success",
            "start after"
        ]
    );
    assert_eq!(
        starts(&actions)[0].spec.needs,
        json!({"call": {"result": "success", "outputs": {"artifact": "app.tar"}}})
    );
}

#[test]
fn reusable_workflow_secrets_mapping_and_failure() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  call:
    uses: ./.github/workflows/reusable.yml
    with:
      target: x
      debug: true
    secrets:
      token: ${{ secrets.DEPLOY_TOKEN }}
  after:
    needs: call
    runs-on: x
    steps: [run: echo]
"#,
    );
    let mut ctx = push("refs/heads/main");
    ctx.secret_names = vec!["DEPLOY_TOKEN".into(), "OTHER".into()];
    let mut graph = graph_for(&workflows, &ctx);
    let actions = graph.next_actions();
    let start = starts(&actions)[0];
    assert_eq!(start.spec.secret_names, ["token"]);
    let run_secrets: IndexMap<String, String> = [
        ("DEPLOY_TOKEN".to_owned(), "s3cret".to_owned()),
        ("OTHER".to_owned(), "x".to_owned()),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        start.secrets.resolve(&run_secrets),
        Ok([("token".to_owned(), "s3cret".to_owned())]
            .into_iter()
            .collect())
    );
    assert_eq!(
        fail(&mut graph, "call/build", 0),
        [
            "done call/build: failure",
            "skip call/check: needed job `build` failed",
            "done call: failure",
            "skip after: needed job `call` failed"
        ]
    );
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

#[test]
fn matrix_over_a_reusable_workflow() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  call:
    strategy:
      matrix:
        target: [linux, mac]
    uses: ./.github/workflows/reusable.yml
    with:
      target: ${{ matrix.target }}
"#,
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    let actions = graph.next_actions();
    assert_eq!(
        describe(&actions),
        ["start call (linux)/build", "start call (mac)/build"]
    );
    let specs = starts(&actions);
    assert_eq!(specs[1].spec.inputs["target"], "mac");
    assert_eq!(specs[1].spec.name, "call (mac) / build");
    assert_eq!(specs[1].spec.key, "call (mac)/build");
    ok(&mut graph, "call (linux)/build", 0);
    let actions = ok(&mut graph, "call (mac)/build", 0);
    assert_eq!(
        actions,
        [
            "done call (mac)/build: success",
            "skip call (mac)/check: `if: inputs.debug` is false",
            "done call: success"
        ]
    );
}

#[test]
fn reusable_workflow_input_mistakes_fail_the_call() {
    let workflows = with_reusable(
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/reusable.yml\n    with:\n      debug: maybe\n",
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    assert_eq!(
        describe(&graph.next_actions()),
        [
            "fail call: with: input `target`: required by the called workflow, but not given in `with:`; input `debug`: expected a boolean (true or false), got \"maybe\""
        ]
    );
}

#[test]
fn remote_reusable_workflows_are_not_available_offline() {
    let workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  call:\n    uses: octo/shared/.github/workflows/build.yml@v1\n",
    )];
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    let job = &plan.workflows[0].jobs[0];
    assert!(
        job.error
            .as_deref()
            .is_some_and(|e| e.contains("not available offline")),
        "{job:?}"
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    let actions = describe(&graph.next_actions());
    assert!(actions[0].starts_with("fail call: reusable workflow `octo/shared/.github/workflows/build.yml@v1` is not available offline"));
}

#[test]
fn nesting_beyond_four_levels_is_an_error() {
    let mut workflows = vec![workflow(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/l1.yml\n",
    )];
    for level in 1..=5 {
        let body = if level == 5 {
            "  leaf:\n    runs-on: x\n    steps: [run: x]\n".to_owned()
        } else {
            format!(
                "  call:\n    uses: ./.github/workflows/l{}.yml\n",
                level + 1
            )
        };
        workflows.push(workflow(
            &format!(".github/workflows/l{level}.yml"),
            &format!("on: workflow_call\njobs:\n{body}"),
        ));
    }
    let plan = plan_run(&workflows, &push("refs/heads/main"));
    let wf = &plan.workflows[0];
    assert_eq!(
        keys(wf),
        [
            "call",
            "call/call",
            "call/call/call",
            "call/call/call/call",
            "call/call/call/call/call"
        ]
    );
    let deepest = wf.jobs.last().expect("jobs");
    assert!(
        deepest
            .error
            .as_deref()
            .is_some_and(|e| e.contains("at most 4 levels")),
        "{deepest:?}"
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    let actions = describe(&graph.next_actions());
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("fail call/call/call/call/call:")),
        "{actions:?}"
    );
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

/// The driver loop of the module docs, with every leg succeeding, over a realistic workflow.
#[test]
fn a_driver_loop_finishes_every_job() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  lint:
    runs-on: x
    steps: [run: lint]
  test:
    needs: lint
    runs-on: x
    strategy:
      max-parallel: 2
      matrix:
        n: [1, 2, 3, 4, 5]
    steps: [run: t]
  call:
    needs: test
    uses: ./.github/workflows/reusable.yml
    with:
      target: all
      debug: true
"#,
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    let mut running: Vec<(JobKey, usize)> = Vec::new();
    let mut started: HashMap<JobKey, usize> = HashMap::new();
    let mut peak = 0;
    loop {
        for action in graph.next_actions() {
            if let Action::StartLeg(start) = action {
                *started.entry(start.key.clone()).or_default() += 1;
                running.push((start.key, start.leg));
            }
        }
        peak = peak.max(running.len());
        if graph.is_finished() {
            break;
        }
        let (key, leg) = running.remove(0);
        graph.finish(&key, leg, Conclusion::Success, IndexMap::new());
    }
    assert_eq!(graph.conclusion(), Some(Conclusion::Success));
    assert_eq!(started[&JobKey::from("test")], 5);
    assert_eq!(started[&JobKey::from("call/check")], 1);
    assert_eq!(peak, 2);
    let all: Vec<String> = graph
        .jobs()
        .into_iter()
        .map(|(k, r)| format!("{k}={}", r.map_or("-", |c| c.as_str())))
        .collect();
    assert_eq!(
        all,
        [
            "lint=success",
            "test=success",
            "call=success",
            "call/build=success",
            "call/check=success"
        ]
    );
}

#[test]
fn fail_fast_over_a_reusable_workflow_matrix_cancels_the_other_call_legs() {
    let workflows = with_reusable(
        r#"
on: push
jobs:
  call:
    strategy:
      matrix:
        target: [linux, mac, windows]
      max-parallel: 2
    uses: ./.github/workflows/reusable.yml
    with:
      target: ${{ matrix.target }}
"#,
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    assert_eq!(
        describe(&graph.next_actions()),
        ["start call (linux)/build", "start call (mac)/build"]
    );
    assert_eq!(
        fail(&mut graph, "call (linux)/build", 0),
        [
            "done call (linux)/build: failure",
            "skip call (linux)/check: needed job `build` failed",
            "cancel call (mac)/build#0",
            "skip call (mac)/check: fail-fast: a leg of `call` failed"
        ]
    );
    graph.finish(
        &"call (mac)/build".into(),
        0,
        Conclusion::Cancelled,
        IndexMap::new(),
    );
    assert_eq!(
        describe(&graph.next_actions()),
        ["done call (mac)/build: cancelled", "done call: failure"]
    );
    assert_eq!(graph.conclusion(), Some(Conclusion::Failure));
}

#[test]
fn cancel_run_reaches_the_jobs_of_a_called_workflow() {
    let workflows = with_reusable(
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/reusable.yml\n    with:\n      target: x\n      debug: true\n",
    );
    let mut graph = graph_for(&workflows, &push("refs/heads/main"));
    assert_eq!(describe(&graph.next_actions()), ["start call/build"]);
    graph.cancel_run();
    assert_eq!(describe(&graph.next_actions()), ["cancel call/build#0"]);
    graph.finish(
        &"call/build".into(),
        0,
        Conclusion::Cancelled,
        IndexMap::new(),
    );
    assert_eq!(
        describe(&graph.next_actions()),
        [
            "done call/build: cancelled",
            "skip call/check: the run was cancelled",
            "done call: cancelled"
        ]
    );
    assert_eq!(graph.conclusion(), Some(Conclusion::Cancelled));
}
