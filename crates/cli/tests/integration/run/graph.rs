//! The run graph as a user sees it: needs and outputs, job `if:` with status functions, skipped
//! dependents, matrix legs named as on GitHub, fail-fast, max-parallel, job continue-on-error,
//! job timeouts, and independent jobs running side by side up to `--jobs-parallel`.

use super::{Scratch, repo_with, run_with_scratch, stored_summary, summary_job};

#[test]
fn outputs_flow_to_the_jobs_that_need_them() {
    let repo = repo_with(
        "on: push
jobs:
  version:
    runs-on: ubuntu-latest
    outputs:
      number: ${{ steps.pick.outputs.number }}
      label: v${{ steps.pick.outputs.number }}
    steps:
      - id: pick
        run: echo 'number=42' >> \"$GITHUB_OUTPUT\"
  build:
    needs: version
    runs-on: ubuntu-latest
    steps:
      - run: echo \"building ${{ needs.version.outputs.label }} (${{ needs.version.outputs.number }})\"
  publish:
    needs: [version, build]
    runs-on: ubuntu-latest
    steps:
      - run: echo \"publishing ${{ needs.version.outputs.number }} after ${{ needs.build.result }} build\"
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[build] building v42 (42)\n"), "{out}");
    assert!(
        out.contains("[publish] publishing 42 after success build\n"),
        "{out}"
    );
}

#[test]
fn dependents_of_a_failed_job_are_skipped_and_status_functions_decide_the_others() {
    let scratch = Scratch::new();
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [run: exit 1]
  test:
    needs: build
    runs-on: ubuntu-latest
    steps: [run: touch \"$OUT/test\"]
  report-failure:
    needs: build
    if: failure()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"build was ${{ needs.build.result }}\"
  cleanup:
    needs: test
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"test was ${{ needs.test.result }}\"
  on-success:
    needs: build
    if: success()
    runs-on: ubuntu-latest
    steps: [run: touch \"$OUT/on-success\"]
",
    );
    let run = run_with_scratch(&repo, &scratch, &[]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(!scratch.exists("test"), "test needs the failed build");
    assert!(!scratch.exists("on-success"));
    assert!(
        out.contains("[report-failure] build was failure\n"),
        "{out}"
    );
    assert!(out.contains("[cleanup] test was skipped\n"), "{out}");
    assert!(
        out.contains("[test] skipped: needed job `build` failed"),
        "{out}"
    );

    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "build")["conclusion"], "failure");
    assert_eq!(summary_job(&summary, "test")["conclusion"], "skipped");
    assert_eq!(
        summary_job(&summary, "report-failure")["conclusion"],
        "success"
    );
    assert_eq!(summary_job(&summary, "cleanup")["conclusion"], "success");
    assert_eq!(summary_job(&summary, "on-success")["conclusion"], "skipped");
}

#[test]
fn matrix_legs_are_named_like_github() {
    let repo = repo_with(
        "on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        version: [1, 2]
        os: [linux]
        include:
          - version: 3
            os: linux
            extra: yes
    steps:
      - run: echo \"v${{ matrix.version }} on ${{ matrix.os }}\"
  named:
    name: Build ${{ matrix.target }}
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: [arm]
    steps: [run: echo ok]
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[test (1, linux)] v1 on linux\n"), "{out}");
    assert!(out.contains("[test (2, linux)] v2 on linux\n"), "{out}");
    assert!(
        out.contains("[test (3, linux, yes)] v3 on linux\n"),
        "{out}"
    );
    assert!(out.contains("[Build arm] ok\n"), "{out}");
    let summary = stored_summary(&repo, 1);
    assert_eq!(
        summary_job(&summary, "test (2, linux)")["matrix"],
        "version=2, os=linux"
    );
}

/// A matrix whose first leg fails once the second is running; the second would run 30 s.
fn fail_fast_workflow(fail_fast: bool) -> String {
    format!(
        "on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: {fail_fast}
      matrix:
        n: [1, 2]
    steps:
      - run: |
          if [ ${{{{ matrix.n }}}} = 1 ]; then
            for i in $(seq 600); do [ -e \"$OUT/second-started\" ] && break; sleep 0.05; done
            exit 1
          fi
          touch \"$OUT/second-started\"
          sleep {}
          touch \"$OUT/second-finished\"
",
        if fail_fast { "30" } else { "0.2" }
    )
}

#[test]
fn fail_fast_cancels_the_other_legs_of_a_failing_matrix() {
    let scratch = Scratch::new();
    let repo = repo_with(&fail_fast_workflow(true));
    let run = run_with_scratch(&repo, &scratch, &["--jobs-parallel", "2"]);
    run.expect_code(1);
    assert!(scratch.exists("second-started"));
    assert!(
        !scratch.exists("second-finished"),
        "the second leg was stopped"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "test (1)")["conclusion"], "failure");
    assert_eq!(summary_job(&summary, "test (2)")["conclusion"], "cancelled");
}

#[test]
fn without_fail_fast_the_other_legs_finish() {
    let scratch = Scratch::new();
    let repo = repo_with(&fail_fast_workflow(false));
    let run = run_with_scratch(&repo, &scratch, &["--jobs-parallel", "2"]);
    run.expect_code(1);
    assert!(scratch.exists("second-finished"));
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "test (1)")["conclusion"], "failure");
    assert_eq!(summary_job(&summary, "test (2)")["conclusion"], "success");
}

/// Start and end times (ns) each job wrote into `$OUT/<name>.start` and `.end`.
fn intervals(scratch: &Scratch, names: &[&str]) -> Vec<(u128, u128)> {
    names
        .iter()
        .map(|name| {
            let read = |suffix: &str| -> u128 {
                scratch
                    .read(&format!("{name}.{suffix}"))
                    .trim()
                    .parse()
                    .expect("a time stamp")
            };
            (read("start"), read("end"))
        })
        .collect()
}

fn assert_disjoint(mut spans: Vec<(u128, u128)>) {
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "these ran at the same time: {pair:?}"
        );
    }
}

const STAMPED: &str =
    "date +%s%N > \"$OUT/$NAME.start\"; sleep 0.1; date +%s%N > \"$OUT/$NAME.end\"";

#[test]
fn max_parallel_runs_matrix_legs_one_at_a_time() {
    let scratch = Scratch::new();
    let repo = repo_with(&format!(
        "on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [a, b, c]
    env:
      NAME: ${{{{ matrix.n }}}}
    steps:
      - run: {STAMPED}
"
    ));
    let run = run_with_scratch(&repo, &scratch, &["--jobs-parallel", "4"]);
    run.expect_code(0);
    assert_disjoint(intervals(&scratch, &["a", "b", "c"]));
}

#[test]
fn independent_jobs_run_at_the_same_time() {
    let scratch = Scratch::new();
    // Each job waits (up to 30 s) until the other has started (and written its start time):
    // they overlap only when they run side by side.
    let job = |me: &str, other: &str| {
        format!(
            "  {me}:
    runs-on: ubuntu-latest
    steps:
      - run: |
          date +%s%N > \"$OUT/{me}.start\"
          touch \"$OUT/{me}.started\"
          for i in $(seq 600); do [ -e \"$OUT/{other}.started\" ] && break; sleep 0.05; done
          date +%s%N > \"$OUT/{me}.end\"
"
        )
    };
    let repo = repo_with(&format!(
        "on: push\njobs:\n{}{}",
        job("left", "right"),
        job("right", "left")
    ));
    let run = run_with_scratch(&repo, &scratch, &["--jobs-parallel", "2"]);
    run.expect_code(0);
    let spans = intervals(&scratch, &["left", "right"]);
    let (left, right) = (spans[0], spans[1]);
    assert!(
        left.0 < right.1 && right.0 < left.1,
        "the jobs overlapped: {spans:?}"
    );
}

#[test]
fn jobs_parallel_1_runs_one_job_at_a_time() {
    let scratch = Scratch::new();
    let job = |name: &str| {
        format!(
            "  {name}:
    runs-on: ubuntu-latest
    env:
      NAME: {name}
    steps:
      - run: {STAMPED}
"
        )
    };
    let repo = repo_with(&format!(
        "on: push\njobs:\n{}{}{}",
        job("one"),
        job("two"),
        job("three")
    ));
    let run = run_with_scratch(&repo, &scratch, &["--jobs-parallel", "1"]);
    run.expect_code(0);
    assert_disjoint(intervals(&scratch, &["one", "two", "three"]));
}

#[test]
fn a_job_with_continue_on_error_does_not_fail_the_run() {
    let repo = repo_with(
        "on: push
jobs:
  experimental:
    runs-on: ubuntu-latest
    continue-on-error: true
    steps: [run: exit 3]
  after:
    needs: experimental
    runs-on: ubuntu-latest
    steps:
      - run: echo \"experimental was ${{ needs.experimental.result }}\"
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[after] experimental was success\n"), "{out}");
    assert!(
        !out.contains("job(s) failed"),
        "the verdict agrees with the exit code:\n{out}"
    );
    // The summary read again later gives the same exit code.
    repo.gantry(&["run", "--last"]).expect_code(0);
}

#[test]
fn a_job_over_its_timeout_fails_as_timed_out() {
    let scratch = Scratch::new();
    let repo = repo_with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    timeout-minutes: 0.02
    steps:
      - name: Hang
        run: |
          echo waiting for the network
          touch \"$OUT/started\"
          sleep 30
          touch \"$OUT/finished\"
      - if: always()
        run: echo cleanup ran
",
    );
    let run = run_with_scratch(&repo, &scratch, &[]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(scratch.exists("started"));
    assert!(!scratch.exists("finished"));
    assert!(
        out.contains("The job has exceeded the maximum execution time of 0.02 minutes."),
        "{out}"
    );
    assert!(out.contains("failure (timed out)"), "{out}");
    assert!(
        out.contains("── slow failed at \"Hang\"; last lines:\n  waiting for the network\n"),
        "the summary shows where the job hung:\n{out}"
    );
    assert!(out.contains("[slow] cleanup ran\n"), "{out}");
}
