//! `uses:`: actions Gantry cannot run are refused before any step runs (or skipped with
//! `--skip-unavailable-actions`, loudly); local composite actions and reusable workflows of the
//! same repository run.

use super::{Scratch, repo_with, run_with_scratch, stored_summary, summary_job};
use crate::harness::TestRepo;

const NEEDS_NODE: &str = "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/first-step\"
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: touch \"$OUT/last-step\"
";

#[test]
fn an_action_gantry_cannot_run_fails_the_job_before_any_step() {
    let scratch = Scratch::new();
    let repo = repo_with(NEEDS_NODE);
    let run = run_with_scratch(&repo, &scratch, &[]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(!scratch.exists("first-step"), "no step ran");
    assert!(
        out.contains(
            "[build] error: This job uses actions Gantry cannot run: actions/setup-node@v4."
        ),
        "{out}"
    );
    assert!(
        out.contains("--skip-unavailable-actions"),
        "the way out is named:\n{out}"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "build")["conclusion"], "failure");
}

#[test]
fn skip_unavailable_actions_skips_them_with_a_warning() {
    let scratch = Scratch::new();
    let repo = repo_with(NEEDS_NODE);
    let run = run_with_scratch(&repo, &scratch, &["--skip-unavailable-actions"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(scratch.exists("first-step"));
    assert!(scratch.exists("last-step"));
    assert!(
        out.contains("[build] warning: Skipping steps that use actions Gantry cannot run: actions/setup-node@v4."),
        "{out}"
    );
    assert!(
        out.contains("[build] - actions/setup-node@v4 skipped"),
        "the step shows as skipped:\n{out}"
    );
}

#[test]
fn a_local_composite_action_runs_with_its_inputs_and_outputs() {
    let repo = TestRepo::new();
    repo.write(
        ".github/actions/greet/action.yml",
        "name: Greet
inputs:
  who:
    required: true
  greeting:
    default: Hello
outputs:
  message:
    value: ${{ steps.say.outputs.message }}
runs:
  using: composite
  steps:
    - id: say
      shell: bash
      run: |
        echo \"${{ inputs.greeting }}, ${{ inputs.who }}!\"
        echo \"message=${{ inputs.greeting }} ${{ inputs.who }}\" >> \"$GITHUB_OUTPUT\"
    - shell: bash
      run: |
        echo \"script next to the action: $(cat \"$GITHUB_ACTION_PATH/extra.txt\")\"
",
    );
    repo.write(".github/actions/greet/extra.txt", "found");
    repo.write(
        ".github/workflows/ci.yml",
        "on: push
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: ./.github/actions/greet
        with:
          who: world
      - run: echo \"the action said '${{ steps.greet.outputs.message }}'\"
",
    );
    repo.commit("composite action");
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[hello] Hello, world!\n"), "{out}");
    assert!(
        out.contains("[hello] script next to the action: found\n"),
        "{out}"
    );
    assert!(
        out.contains("[hello] the action said 'Hello world'\n"),
        "{out}"
    );
}

#[test]
fn a_reusable_workflow_of_the_repository_runs_under_its_callers_name() {
    let repo = TestRepo::new();
    repo.write(
        ".github/workflows/build.yml",
        "on:
  workflow_call:
    inputs:
      target:
        type: string
        required: true
    outputs:
      artifact:
        value: ${{ jobs.compile.outputs.artifact }}
jobs:
  compile:
    runs-on: ubuntu-latest
    outputs:
      artifact: ${{ steps.c.outputs.artifact }}
    steps:
      - id: c
        run: |
          echo \"compiling for ${{ inputs.target }}\"
          echo 'artifact=app-${{ inputs.target }}.tar' >> \"$GITHUB_OUTPUT\"
",
    );
    repo.write(
        ".github/workflows/ci.yml",
        "on: push
jobs:
  release:
    uses: ./.github/workflows/build.yml
    with:
      target: arm64
  publish:
    needs: release
    runs-on: ubuntu-latest
    steps:
      - run: echo \"publishing ${{ needs.release.outputs.artifact }}\"
",
    );
    repo.commit("reusable workflow");
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("[release / compile] compiling for arm64\n"),
        "{out}"
    );
    assert!(
        out.contains("[publish] publishing app-arm64.tar\n"),
        "{out}"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(
        summary_job(&summary, "release / compile")["conclusion"],
        "success"
    );
}

#[test]
fn an_invalid_local_action_is_reported_with_its_location() {
    let repo = TestRepo::new();
    repo.write(
        ".github/actions/broken/action.yml",
        "name: Broken\nruns:\n  using: composite\n  steps:\n    - run: echo a: b\n      shell: bash\n",
    );
    repo.write(
        ".github/workflows/ci.yml",
        "on: push
jobs:
  use:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/broken
",
    );
    repo.commit("broken action");
    let run = repo.gantry(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains(".github/actions/broken/action.yml:5:"),
        "{out}"
    );
    assert!(
        !out.contains("Is the repository checked out"),
        "the file is there: no misleading hint:\n{out}"
    );
}

#[test]
fn job_selects_a_called_workflow_with_its_jobs() {
    let scratch = Scratch::new();
    let repo = TestRepo::new();
    repo.write(
        ".github/workflows/build.yml",
        "on: workflow_call
jobs:
  compile:
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/compile\"
",
    );
    repo.write(
        ".github/workflows/ci.yml",
        "on: push
jobs:
  release:
    uses: ./.github/workflows/build.yml
  publish:
    needs: release
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/publish\"
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: touch \"$OUT/lint\"
",
    );
    repo.commit("reusable workflow");
    let run = run_with_scratch(&repo, &scratch, &["--job", "publish"]);
    run.expect_code(0);
    assert!(scratch.exists("compile"), "the called workflow's job ran");
    assert!(scratch.exists("publish"));
    assert!(!scratch.exists("lint"));
}
