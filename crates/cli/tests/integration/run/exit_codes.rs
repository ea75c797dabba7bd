//! Exit codes: 0 when every job succeeded, 1 when a job failed, 2 for an invalid workflow or a
//! usage mistake (nothing runs), 130 when interrupted (see `interrupt.rs`).

use super::{Scratch, repo_with, run_with_scratch};

#[test]
fn a_run_where_every_job_succeeds_exits_0() {
    let repo = repo_with(
        "on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [run: echo one]
  b:
    runs-on: ubuntu-latest
    steps: [run: echo two]
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("All jobs succeeded"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_failing_job_makes_the_run_exit_1() {
    let repo = repo_with(
        "on: push
jobs:
  good:
    runs-on: ubuntu-latest
    steps: [run: echo fine]
  bad:
    runs-on: ubuntu-latest
    steps: [run: exit 7]
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(out.contains("Process completed with exit code 7."), "{out}");
    assert!(out.contains("1 job(s) failed"), "{out}");
}

#[test]
fn an_invalid_workflow_exits_2_with_located_diagnostics_and_runs_nothing() {
    let scratch = Scratch::new();
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/ran\"
  test:
    needs: biuld
    runs-on: ubuntu-latest
    steps: [run: echo test]
",
    );
    let run = run_with_scratch(&repo, &scratch, &[]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains(".github/workflows/ci.yml:8:12"),
        "the diagnostic is located at file:line:col:\n{err}"
    );
    assert!(err.contains("biuld"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!scratch.exists("ran"), "no step ran");
    assert!(
        !repo.path().join(".gantry/runs/1").exists(),
        "no run was recorded"
    );
}

#[test]
fn an_unknown_job_is_a_usage_error_listing_the_jobs() {
    let scratch = Scratch::new();
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [run: touch \"$OUT/ran\"]
  test:
    runs-on: ubuntu-latest
    steps: [run: touch \"$OUT/ran\"]
",
    );
    let run = run_with_scratch(&repo, &scratch, &["--job", "tset"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("--job tset: no such job"), "{err}");
    assert!(err.contains("build, test"), "{err}");
    assert!(!scratch.exists("ran"));
}

const DISPATCH: &str = "on:
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [info, debug]
        default: info
      count:
        type: number
        required: true
      dry:
        type: boolean
        default: false
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/ran\"
";

#[test]
fn an_input_of_the_wrong_type_is_a_usage_error() {
    let scratch = Scratch::new();
    let repo = repo_with(DISPATCH);
    let run = run_with_scratch(
        &repo,
        &scratch,
        &["--event", "workflow_dispatch", "--input", "count=many"],
    );
    run.expect_code(2);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains("count"), "the input is named:\n{all}");
    assert!(!scratch.exists("ran"));
}

#[test]
fn an_unknown_input_and_a_choice_outside_its_options_are_usage_errors() {
    let scratch = Scratch::new();
    let repo = repo_with(DISPATCH);
    for input in ["colour=red", "level=trace"] {
        let run = run_with_scratch(
            &repo,
            &scratch,
            &[
                "--event",
                "workflow_dispatch",
                "--input",
                "count=1",
                "--input",
                input,
            ],
        );
        run.expect_code(2);
        let all = format!("{}{}", run.stdout(), run.stderr());
        let name = input.split('=').next().expect("name");
        assert!(all.contains(name), "{input}: the input is named:\n{all}");
    }
    assert!(!scratch.exists("ran"));
}

#[test]
fn an_input_without_equals_sign_is_a_usage_error() {
    let repo = repo_with(DISPATCH);
    let run = repo.gantry(&["run", "--event", "workflow_dispatch", "--input", "count"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("`count` is not NAME=VALUE"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_grace_period_that_is_not_a_reasonable_number_is_a_usage_error() {
    let repo = repo_with(DISPATCH);
    for value in ["inf", "NaN", "-1", "soon", "1e30"] {
        let run = repo.gantry(&["run", &format!("--interrupt-grace={value}")]);
        run.expect_code(2);
        assert!(
            run.stderr().contains("--interrupt-grace"),
            "{}",
            run.stderr()
        );
        assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    }
}

#[test]
fn unreadable_secret_and_payload_files_are_usage_errors() {
    let scratch = Scratch::new();
    let repo = repo_with(DISPATCH);
    let run = run_with_scratch(&repo, &scratch, &["--secret-file", "no-such.env"]);
    run.expect_code(2);
    assert!(run.stderr().contains("no-such.env"), "{}", run.stderr());
    repo.write("bad.env", "NOT A PAIR\n");
    let run = run_with_scratch(&repo, &scratch, &["--secret-file", "bad.env"]);
    run.expect_code(2);
    assert!(run.stderr().contains("bad.env: line 1"), "{}", run.stderr());
    repo.write("payload.json", "{ not json");
    let run = run_with_scratch(&repo, &scratch, &["--payload", "payload.json"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("payload.json is not valid JSON"),
        "{}",
        run.stderr()
    );
    assert!(!scratch.exists("ran"));
}
