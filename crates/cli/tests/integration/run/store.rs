//! `.gantry/runs/<n>/`: the event stream, a log per job and the summary of every run, and
//! `gantry run --last` showing that summary again with the run's exit code.

use super::{repo_with, run_dir, stored_events, stored_summary, summary_job};

const TWO_JOBS: &str = "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: Say hello
        run: echo hello from build
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: echo \"testing ${{ matrix.n }}\"
";

#[test]
fn a_run_keeps_its_events_logs_and_summary() {
    let repo = repo_with(TWO_JOBS);
    repo.gantry(&["run"]).expect_code(0);
    let dir = run_dir(&repo, 1);

    let events = stored_events(&repo, 1);
    // Log events say how many bytes went to the job's log file; the text is kept once, there.
    assert!(events.iter().any(|e| e["event"] == "log"
        && e["job"] == "build"
        && e["bytes"] == "hello from build\n".len()));
    assert!(events.iter().all(|e| e.get("text").is_none()));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "job_finished")
            .count(),
        3
    );

    let build_log = std::fs::read_to_string(dir.join("logs/build.log")).expect("build log");
    assert!(
        build_log.contains("--- Say hello\nhello from build\n"),
        "{build_log}"
    );
    let leg_log = std::fs::read_to_string(dir.join("logs/test.1.log")).expect("leg log");
    assert!(leg_log.contains("testing 2\n"), "{leg_log}");

    let summary = stored_summary(&repo, 1);
    assert_eq!(summary["number"], 1);
    assert_eq!(summary["event"], "push");
    assert_eq!(summary["git_ref"], "refs/heads/main");
    assert_eq!(summary["sha"], repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(summary_job(&summary, "test (2)")["conclusion"], "success");

    // The next run gets the next number; the first is kept.
    let second = repo.gantry(&["run"]);
    second.expect_code(0);
    assert!(
        second.stdout().contains("run #2 (.gantry/runs/2)"),
        "{}",
        second.stdout()
    );
    assert!(run_dir(&repo, 2).join("summary.json").exists());
    assert!(dir.join("summary.json").exists());
}

#[test]
fn last_shows_the_last_summary_with_the_runs_exit_code() {
    let repo = repo_with(TWO_JOBS);
    repo.gantry(&["run"]).expect_code(0);
    let last = repo.gantry(&["run", "--last"]);
    last.expect_code(0);
    assert!(last.stdout().contains("│ test (2)"), "{}", last.stdout());
    assert!(
        last.stdout().contains("All jobs succeeded"),
        "{}",
        last.stdout()
    );

    repo.write(
        ".github/workflows/ci.yml",
        &TWO_JOBS.replace("echo hello from build", "echo broken; exit 1"),
    );
    repo.commit("break the build");
    let failed = repo.gantry(&["run"]);
    failed.expect_code(1);
    let last = repo.gantry(&["run", "--last"]);
    last.expect_code(1);
    let out = last.stdout();
    assert!(
        out.contains("── build failed at \"Say hello\"; last lines:\n  broken\n"),
        "{out}"
    );
    assert!(out.contains("run #2"), "{out}");
    // The same table as at the end of the run.
    let table = |text: &str| -> String {
        text.lines()
            .filter(|l| l.starts_with('│'))
            .map(|l| l.split('┆').take(3).collect::<Vec<_>>().join("┆"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&out), table(&failed.stdout()));
}

#[test]
fn last_without_any_run_says_how_to_start_one() {
    let repo = repo_with(TWO_JOBS);
    let last = repo.gantry(&["run", "--last"]);
    last.expect_code(2);
    assert!(
        last.stderr().contains("start one with `gantry run`"),
        "{}",
        last.stderr()
    );
}
