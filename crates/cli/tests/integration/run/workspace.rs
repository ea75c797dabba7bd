//! Where jobs run: a clean copy of the committed tree at HEAD for each job, or the working tree
//! itself with `--workspace-here`.

use super::{Scratch, repo_with, run_with_scratch};

const SHOW_FILES: &str = "on: push
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo \"tracked: $(cat tracked.txt)\"
          if [ -e untracked.txt ]; then echo 'untracked: present'; else echo 'untracked: absent'; fi
          pwd > \"$OUT/workspace\"
";

#[test]
fn an_uncommitted_change_is_not_in_a_clean_run() {
    let scratch = Scratch::new();
    let repo = repo_with(SHOW_FILES);
    repo.write("tracked.txt", "committed");
    repo.commit("add tracked.txt");
    repo.write("tracked.txt", "changed but not committed");
    repo.write("untracked.txt", "new");

    let run = run_with_scratch(&repo, &scratch, &[]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[show] tracked: committed\n"), "{out}");
    assert!(out.contains("[show] untracked: absent\n"), "{out}");
    let workspace = scratch.read("workspace");
    assert_ne!(
        std::path::Path::new(workspace.trim()),
        repo.path(),
        "the job ran in a copy, not in the working tree"
    );
    assert!(!out.contains("working tree"), "{out}");
}

#[test]
fn workspace_here_runs_in_the_working_tree_and_says_so() {
    let scratch = Scratch::new();
    let repo = repo_with(SHOW_FILES);
    repo.write("tracked.txt", "committed");
    repo.commit("add tracked.txt");
    repo.write("tracked.txt", "changed but not committed");
    repo.write("untracked.txt", "new");

    let run = run_with_scratch(&repo, &scratch, &["--workspace-here"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("(uncommitted changes included), not in a clean checkout"),
        "{out}"
    );
    assert!(
        out.contains("[show] tracked: changed but not committed\n"),
        "{out}"
    );
    assert!(out.contains("[show] untracked: present\n"), "{out}");
    let workspace = std::fs::canonicalize(scratch.read("workspace").trim()).expect("pwd");
    assert_eq!(workspace, std::fs::canonicalize(repo.path()).expect("repo"));
    assert_eq!(
        std::fs::read_to_string(repo.path().join("tracked.txt")).expect("tracked.txt"),
        "changed but not committed",
        "the working tree is left as it was"
    );
}

#[test]
fn each_job_gets_its_own_copy_of_the_tree() {
    let repo = repo_with(
        "on: push
jobs:
  dirty:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo garbage > tracked.txt
          touch leftover.txt
  check:
    needs: dirty
    runs-on: ubuntu-latest
    steps:
      - run: |
          test \"$(cat tracked.txt)\" = committed
          test ! -e leftover.txt
          echo clean copy
",
    );
    repo.write("tracked.txt", "committed");
    repo.commit("add tracked.txt");
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("[check] clean copy\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn actions_checkout_in_a_clean_run_gives_the_committed_tree() {
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo \"tracked: $(cat tracked.txt)\"
",
    );
    repo.write("tracked.txt", "committed");
    repo.commit("add tracked.txt");
    repo.write("tracked.txt", "not committed");
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("[build] tracked: committed\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn keep_workspace_keeps_the_jobs_workspace_and_says_where() {
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo built > artifact.txt
",
    );
    let run = repo.gantry(&["run", "--keep-workspace"]);
    run.expect_code(0);
    let out = run.stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("Workspaces kept in "))
        .unwrap_or_else(|| panic!("where the workspaces are is not said:\n{out}"));
    let dir = line
        .strip_prefix("Workspaces kept in ")
        .and_then(|rest| rest.strip_suffix(" (one folder per job)"))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("{line}"));
    let artifact = dir.join("build/work/artifact.txt");
    let text = std::fs::read_to_string(&artifact)
        .unwrap_or_else(|e| panic!("{}: {e}\n{out}", artifact.display()));
    assert_eq!(text, "built\n");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_repository_without_commits_runs_in_the_working_tree_and_says_so() {
    let repo = crate::harness::TestRepo::new();
    repo.write(
        ".github/workflows/ci.yml",
        "on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo \"draft: $(cat draft.txt)\"
",
    );
    repo.write("draft.txt", "not committed yet");
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[first] draft: not committed yet\n"), "{out}");
    let warning = out
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    assert!(warning.contains("no commit"), "{warning}");
    assert!(warning.contains("working tree"), "{warning}");
    assert!(
        !warning.contains("copy"),
        "it does not run in a copy: {warning}"
    );
}
