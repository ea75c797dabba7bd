//! `gantry plan` as a user sees it: a realistic workflow set in a real git repository, the
//! human output (snapshots, colour off), the JSON, and the exit codes.

use crate::harness::TestRepo;
use serde_json::Value;

const CI: &str = r#"name: CI
on:
  push:
    branches: [main, 'release/**']
    paths: ['src/**', '.github/workflows/**']
  pull_request:
jobs:
  lint:
    runs-on: ubuntu-latest
    steps: [run: make lint]
  test:
    needs: lint
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, macos-latest]
        node: [18, 20]
        exclude:
          - os: macos-latest
            node: 18
    steps: [run: make test]
  setup:
    runs-on: ubuntu-latest
    outputs:
      targets: ${{ steps.t.outputs.targets }}
    steps:
      - id: t
        run: echo 'targets=["x86", "arm"]' >> "$GITHUB_OUTPUT"
  build:
    needs: [test, setup]
    name: Build ${{ matrix.target }}
    strategy:
      matrix:
        target: ${{ fromJSON(needs.setup.outputs.targets) }}
    runs-on: ubuntu-latest
    steps: [run: make build]
  deploy:
    needs: build
    if: github.ref == 'refs/heads/main' && github.event_name == 'push'
    uses: ./.github/workflows/deploy.yml
    with:
      environment: production
    secrets: inherit
  preview:
    needs: build
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps: [run: make preview]
  notify:
    needs: [deploy, preview]
    if: always()
    runs-on: ubuntu-latest
    steps: [run: echo done]
"#;

const DEPLOY: &str = r#"name: Deploy
on:
  workflow_call:
    inputs:
      environment:
        type: string
        required: true
jobs:
  upload:
    name: Upload to ${{ inputs.environment }}
    runs-on: ubuntu-latest
    steps: [run: ./upload.sh]
  smoke:
    needs: upload
    if: inputs.environment == 'staging'
    runs-on: ubuntu-latest
    steps: [run: ./smoke.sh]
"#;

const RELEASE: &str = r#"name: Release
run-name: Release ${{ github.ref_name }}
on:
  push:
    tags: ['v*']
  workflow_dispatch:
    inputs:
      channel:
        type: choice
        options: [stable, beta]
        default: stable
      dry-run:
        type: boolean
        default: false
jobs:
  publish:
    if: ${{ !inputs.dry-run }}
    runs-on: ubuntu-latest
    steps: [run: make publish]
"#;

const DOCS: &str = r#"name: Docs
on:
  push:
    paths: ['docs/**']
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [run: make docs]
"#;

/// The realistic repository: three committed changes, the last one touching `src/`.
fn repository() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".github/workflows/ci.yml", CI)
        .write(".github/workflows/deploy.yml", DEPLOY)
        .write(".github/workflows/release.yml", RELEASE)
        .write(".github/workflows/docs.yml", DOCS)
        .write("README.md", "hello\n")
        .commit("workflows");
    repo.write("src/main.rs", "fn main() {}\n").commit("code");
    repo
}

/// The output with the commit (which changes with the clock) replaced by `<sha>`.
fn without_sha(repo: &TestRepo, text: &str) -> String {
    let sha = repo.git(&["rev-parse", "HEAD"]);
    text.replace(&sha, "<sha>").replace(&sha[..12], "<sha>")
}

#[test]
fn plan_of_a_push_shows_jobs_legs_and_reasons() {
    let repo = repository();
    let run = repo.gantry(&["plan"]);
    run.expect_code(0);
    insta::assert_snapshot!("plan_push", without_sha(&repo, &run.stdout()));
}

#[test]
fn plan_of_a_pull_request_with_given_changed_paths() {
    let repo = repository();
    let run = repo.gantry(&[
        "plan",
        "--event",
        "pull_request",
        "--base",
        "main",
        "--changed",
        "src/lib.rs",
        "--changed",
        "docs/guide.md",
    ]);
    run.expect_code(0);
    insta::assert_snapshot!("plan_pull_request", without_sha(&repo, &run.stdout()));
}

#[test]
fn plan_of_a_tag_push_runs_the_release() {
    let repo = repository();
    let run = repo.gantry(&["plan", "--ref", "refs/tags/v1.2.0", "--json"]);
    run.expect_code(0);
    let plan: Value = serde_json::from_str(&run.stdout()).expect("JSON");
    let triggered: Vec<&str> = plan["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .filter(|w| w["triggered"] == true)
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    // Path filters are not evaluated for tag pushes: Docs runs too.
    assert_eq!(triggered, ["Docs", "Release"]);
    let release = &plan["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .find(|w| w["name"] == "Release")
        .expect("release");
    assert_eq!(release["run_name"], "Release v1.2.0");
    assert_eq!(release["jobs"][0]["id"], "publish");
    assert_eq!(
        release["jobs"][0]["legs"],
        serde_json::json!([{"matrix": {}, "name": "publish"}])
    );
    assert_eq!(release["jobs"][0]["skipped_reason"], Value::Null);
}

#[test]
fn json_lists_jobs_in_needs_order_with_legs() {
    let repo = repository();
    let run = repo.gantry(&["plan", "--json", ".github/workflows/ci.yml"]);
    run.expect_code(0);
    let plan: Value = serde_json::from_str(&run.stdout()).expect("JSON");
    assert_eq!(
        plan["changed_paths"]["paths"],
        serde_json::json!(["src/main.rs"])
    );
    assert_eq!(plan["changed_paths"]["source"], "from git diff HEAD~1 HEAD");
    let workflows = plan["workflows"].as_array().expect("workflows");
    assert_eq!(workflows.len(), 1, "only the named file is planned");
    let ci = &workflows[0];
    assert_eq!(ci["file"], ".github/workflows/ci.yml");
    assert_eq!(ci["triggered"], true);
    let keys: Vec<&str> = ci["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        [
            "lint",
            "test",
            "setup",
            "build",
            "deploy",
            "deploy/upload",
            "deploy/smoke",
            "preview",
            "notify"
        ]
    );
    let test = &ci["jobs"][1];
    assert_eq!(test["needs"], serde_json::json!(["lint"]));
    assert_eq!(
        test["legs"],
        serde_json::json!([
            {"matrix": {"os": "ubuntu-latest", "node": 18}, "name": "test (ubuntu-latest, 18)"},
            {"matrix": {"os": "ubuntu-latest", "node": 20}, "name": "test (ubuntu-latest, 20)"},
            {"matrix": {"os": "macos-latest", "node": 20}, "name": "test (macos-latest, 20)"}
        ])
    );
    assert_eq!(
        ci["jobs"][3]["matrix_at_run_time"],
        "expanded at run time because the matrix uses `needs`"
    );
    assert_eq!(ci["jobs"][5]["name"], "deploy / Upload to production");
    assert_eq!(
        ci["jobs"][6]["skipped_reason"],
        "`if: inputs.environment == 'staging'` is false"
    );
    assert_eq!(
        ci["jobs"][7]["skipped_reason"],
        "`if: github.event_name == 'pull_request'` is false"
    );
}

#[test]
fn nothing_triggered_is_not_an_error() {
    let repo = repository();
    let run = repo.gantry(&["plan", "--event", "release"]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .contains("0 of 4 workflows triggered: 0 jobs (0 known legs) to run, 0 skipped"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_change_outside_the_path_filters_does_not_trigger() {
    let repo = repository();
    repo.write("README.md", "changed\n").commit("readme");
    let run = repo.gantry(&["plan", "--json"]);
    run.expect_code(0);
    let plan: Value = serde_json::from_str(&run.stdout()).expect("JSON");
    let ci = &plan["workflows"][0];
    assert_eq!(ci["name"], "CI");
    assert_eq!(ci["triggered"], false);
    assert_eq!(
        ci["reason"],
        "no changed path matches paths [src/**, .github/workflows/**]"
    );
}

#[test]
fn dispatch_inputs_are_typed_and_checked() {
    let repo = repository();
    let run = repo.gantry(&[
        "plan",
        "--event",
        "workflow_dispatch",
        "--input",
        "dry-run=true",
        "--json",
    ]);
    run.expect_code(0);
    let plan: Value = serde_json::from_str(&run.stdout()).expect("JSON");
    let release = plan["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .find(|w| w["name"] == "Release")
        .expect("release")
        .clone();
    assert_eq!(
        release["inputs"],
        serde_json::json!({"channel": "stable", "dry-run": true})
    );
    assert_eq!(
        release["jobs"][0]["skipped_reason"],
        "`if: ${{ !inputs.dry-run }}` is false"
    );

    let run = repo.gantry(&[
        "plan",
        "--event",
        "workflow_dispatch",
        "--input",
        "channel=nightly",
    ]);
    run.expect_code(2);
    assert!(
        run.stdout()
            .contains("error: input `channel`: `nightly` is not one of the options: stable, beta"),
        "{}",
        run.stdout()
    );
}

#[test]
fn invalid_workflows_are_refused_with_their_diagnostics() {
    let repo = repository();
    repo.write(
        ".github/workflows/broken.yml",
        "on: push\njobs:\n  a:\n    needs: nope\n    runs-on: x\n    steps: [run: a]\n",
    )
    .commit("broken");
    let run = repo.gantry(&["plan"]);
    run.expect_code(2);
    assert_eq!(run.stdout(), "");
    let stderr = run.stderr();
    assert!(
        stderr.contains(".github/workflows/broken.yml:4:"),
        "{stderr}"
    );
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(stderr.contains("nothing planned"), "{stderr}");
}

#[test]
fn a_bad_payload_is_a_usage_error() {
    let repo = repository();
    repo.write("event.json", "[1, 2]");
    let run = repo.gantry(&["plan", "--payload", "event.json"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("must hold a JSON object"),
        "{}",
        run.stderr()
    );
}

#[test]
fn help_has_examples() {
    let repo = TestRepo::new();
    let run = repo.gantry(&["plan", "--help"]);
    run.expect_code(0);
    let help = run.stdout();
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("gantry plan --event push --ref refs/tags/v1.2.0"),
        "{help}"
    );
    assert!(help.contains("--changed <PATH>"), "{help}");
}
