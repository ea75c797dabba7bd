//! nektos/act's runner tests (testdata/oracles/act-runner-cases.json): every `run:`-only case
//! runs through the real `gantry run` in a fresh repository, and its success or failure must
//! match act's expectation. Cases that cannot apply on this machine, and deliberate differences,
//! are listed in docs/compat/runner.md with the reason; the test checks that list is accurate.

use crate::harness::{TestRepo, testdata};
use serde_json::Value;
use std::path::Path;

/// Cases that do not apply here, with the reason (also in docs/compat/runner.md).
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "TestRunEventHostEnvironment/windows-prepend-path/push",
        "Windows runner only",
    ),
    (
        "TestRunEventHostEnvironment/windows-prepend-path-powershell-5/push",
        "Windows runner only",
    ),
    (
        "TestRunEventHostEnvironment/windows-shell-cmd/push",
        "Windows runner only",
    ),
    (
        "TestRunEvent/networking/push",
        "installs apt packages with `apt install`: on the host backend that would change this machine",
    ),
    (
        "TestRunEvent/defaults-run/push",
        "asserts that $SHELL is unset, true only inside act's container",
    ),
    (
        "TestRunEvent/if-env-act/push",
        "asserts that the ACT variable is set, which only act does",
    ),
    (
        "TestRunEventHostEnvironment/if-env-act/push",
        "asserts that the ACT variable is set, which only act does",
    ),
];

/// Cases where Gantry deliberately differs from act (also in docs/compat/runner.md).
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "TestRunActionInputs/input-from-cli/workflow_dispatch",
        "the workflow declares required inputs NAME and SOME_VALUE that the test does not give: \
         GitHub refuses such a dispatch, and so does Gantry; act does not check",
    ),
    (
        "TestRunEvent/workflow_call_inputs/workflow_call",
        "two `on.workflow_call.inputs` have no `type`, which GitHub's workflow schema requires \
         (GitHub rejects the file, and so does `gantry validate`); act does not check. With the \
         types added the workflow runs through `--event workflow_call` and succeeds",
    ),
];

fn copy_case(from: &Path, repo: &TestRepo) {
    for entry in std::fs::read_dir(from).expect("case folder").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            repo.write(&format!(".github/workflows/{name}"), &text);
        } else {
            repo.write(&name, &text);
        }
    }
}

fn args_for(case: &Value, folder: &Path) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        "--event".to_owned(),
        case["event"].as_str().unwrap_or("push").to_owned(),
        "--actor".to_owned(),
        "nektos/act".to_owned(),
        "--repository".to_owned(),
        "nektos/act".to_owned(),
    ];
    if folder.join("event.json").exists() {
        args.extend(["--payload".to_owned(), "event.json".to_owned()]);
    }
    let id = case["id"].as_str().unwrap_or_default();
    if id.starts_with("TestRunEventSecrets/") {
        args.extend(["--secret-file", ".secrets", "--env-file", ".env"].map(str::to_owned));
    }
    if id.starts_with("TestRunActionInputs/input-from-cli") {
        args.extend(["--input", "SOME_INPUT=input"].map(str::to_owned));
    }
    if id.starts_with("TestRunMatrixWithUserDefinedInclusions/") {
        for m in ["node=8", "node=8.x", "os=ubuntu-18.04"] {
            args.extend(["--matrix".to_owned(), m.to_owned()]);
        }
    }
    args
}

#[test]
fn act_run_only_cases_give_acts_result() {
    let text =
        std::fs::read_to_string(testdata().join("oracles/act-runner-cases.json")).expect("oracle");
    let oracle: Value = serde_json::from_str(&text).expect("json");
    let cases: Vec<&Value> = oracle["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["run_only"].as_bool() == Some(true))
        .collect();
    let compat = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/compat/runner.md"
    ))
    .expect("docs/compat/runner.md");

    let mut passed = 0;
    let mut failures = Vec::new();
    let mut applicable = 0;
    for case in &cases {
        let id = case["id"].as_str().expect("id");
        if let Some((_, why)) = NOT_APPLICABLE.iter().find(|(c, _)| *c == id) {
            if !compat.contains(id) {
                failures.push(format!(
                    "{id} ({why}) is not listed in docs/compat/runner.md"
                ));
            }
            continue;
        }
        applicable += 1;
        let folder = testdata().join(
            case["copied_to"]
                .as_str()
                .expect("copied_to")
                .trim_start_matches("oracles/")
                .replace("act-testdata", "oracles/act-testdata"),
        );
        let repo = TestRepo::new();
        copy_case(&folder, &repo);
        repo.commit("case");
        let args = args_for(case, &folder);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = repo.gantry(&arg_refs);
        let expected_success = case["expected"].as_str() == Some("success");
        let ok = if expected_success {
            run.code() == 0
        } else {
            run.code() == 1
        };
        if ok {
            passed += 1;
        } else if let Some((_, why)) = DIFFERENCES.iter().find(|(c, _)| *c == id) {
            if !compat.contains(id) {
                failures.push(format!(
                    "{id} ({why}) is not listed in docs/compat/runner.md"
                ));
            }
        } else {
            failures.push(format!(
                "{id}: expected {}, exit {}\n{}\n{}",
                case["expected"],
                run.code(),
                tail(&run.stdout(), 30),
                tail(&run.stderr(), 10)
            ));
        }
    }
    println!(
        "act run-only cases: {passed}/{applicable} pass ({} not applicable here, {} documented differences)",
        NOT_APPLICABLE.len(),
        DIFFERENCES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
