//! Choosing what runs: `--job` (with the jobs it needs), `--matrix`, and `--list` /
//! `--dry-run`, which run nothing.

use super::{Scratch, repo_with, run_with_scratch, stored_summary};

const PIPELINE: &str = "on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      tool: ${{ steps.t.outputs.tool }}
    steps:
      - id: t
        run: |
          touch \"$OUT/setup\"
          echo 'tool=hammer' >> \"$GITHUB_OUTPUT\"
  build:
    needs: setup
    runs-on: ubuntu-latest
    steps:
      - run: |
          touch \"$OUT/build\"
          echo \"building with ${{ needs.setup.outputs.tool }}\"
  lint:
    runs-on: ubuntu-latest
    steps: [run: touch \"$OUT/lint\"]
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, bsd]
        version: [1, 2]
    steps:
      - run: touch \"$OUT/test-${{ matrix.os }}-${{ matrix.version }}\"
";

#[test]
fn job_runs_the_job_and_the_jobs_it_needs_only() {
    let scratch = Scratch::new();
    let repo = repo_with(PIPELINE);
    let run = run_with_scratch(&repo, &scratch, &["--job", "build"]);
    run.expect_code(0);
    assert!(scratch.exists("setup"));
    assert!(scratch.exists("build"));
    assert!(!scratch.exists("lint"));
    assert!(!scratch.exists("test-linux-1"));
    assert!(
        run.stdout().contains("[build] building with hammer\n"),
        "{}",
        run.stdout()
    );
    let summary = stored_summary(&repo, 1);
    let names: Vec<&str> = summary["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["setup", "build"],
        "only the chosen jobs are reported"
    );
}

#[test]
fn matrix_runs_only_the_matching_legs() {
    let scratch = Scratch::new();
    let repo = repo_with(PIPELINE);
    let run = run_with_scratch(&repo, &scratch, &["--job", "test", "--matrix", "os=bsd"]);
    run.expect_code(0);
    assert!(scratch.exists("test-bsd-1"));
    assert!(scratch.exists("test-bsd-2"));
    assert!(!scratch.exists("test-linux-1"));
    assert!(!scratch.exists("test-linux-2"));

    let scratch = Scratch::new();
    let run = run_with_scratch(
        &repo,
        &scratch,
        &[
            "--job",
            "test",
            "--matrix",
            "os=linux",
            "--matrix",
            "version=2",
        ],
    );
    run.expect_code(0);
    assert!(scratch.exists("test-linux-2"));
    assert!(!scratch.exists("test-linux-1"));
    assert!(!scratch.exists("test-bsd-2"));
}

#[test]
fn list_shows_jobs_and_legs_and_runs_nothing() {
    let scratch = Scratch::new();
    let repo = repo_with(PIPELINE);
    let run = run_with_scratch(&repo, &scratch, &["--list"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("  build build needs: setup\n"), "{out}");
    assert!(out.contains("      os=bsd, version=2\n"), "{out}");
    assert!(
        std::fs::read_dir(scratch.path())
            .expect("scratch")
            .next()
            .is_none()
    );
    assert!(!repo.path().join(".gantry").exists(), "no run was recorded");
}

#[test]
fn dry_run_shows_what_would_run_and_runs_nothing() {
    let scratch = Scratch::new();
    let repo = repo_with(PIPELINE);
    let run = run_with_scratch(&repo, &scratch, &["--dry-run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("(dry run: nothing was executed)"), "{out}");
    let order: Vec<usize> = ["  setup", "  build", "  test"]
        .iter()
        .map(|job| {
            out.find(job)
                .unwrap_or_else(|| panic!("{job} missing:\n{out}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "needs order:\n{out}");
    assert!(
        std::fs::read_dir(scratch.path())
            .expect("scratch")
            .next()
            .is_none()
    );
    assert!(!repo.path().join(".gantry").exists(), "no run was recorded");
}

#[test]
fn a_matrix_filter_that_matches_no_leg_is_a_usage_error() {
    let scratch = Scratch::new();
    let repo = repo_with(PIPELINE);
    let run = run_with_scratch(&repo, &scratch, &["--matrix", "os=bds"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("--matrix os=bds"), "{err}");
    assert!(err.contains("linux, bsd"), "the values are listed:\n{err}");

    let run = run_with_scratch(&repo, &scratch, &["--matrix", "sys=bsd"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("--matrix sys=bsd"), "{err}");
    assert!(err.contains("os, version"), "the keys are listed:\n{err}");
    assert!(
        std::fs::read_dir(scratch.path())
            .expect("scratch")
            .next()
            .is_none()
    );
}
