//! Secrets, variables and inputs: `--secret` and `--secret-file` values (multi-line ones too)
//! and `::add-mask::` values never appear in the terminal or in `.gantry/runs`; `--var` fills
//! `vars`; `--input` values are typed for `workflow_dispatch`.

use super::{repo_with, run_dir};
use std::path::Path;

/// Every file under `dir`, as text.
fn all_stored_text(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text =
                    String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
                files.push((path.display().to_string(), text));
            }
        }
    }
    files
}

#[test]
fn secrets_are_masked_on_the_terminal_and_in_stored_runs() {
    let repo = repo_with(
        "on: push
jobs:
  leak:
    runs-on: ubuntu-latest
    steps:
      - name: Print secrets
        env:
          TOKEN: ${{ secrets.TOKEN }}
          CERT: ${{ secrets.CERT }}
        run: |
          echo \"token is $TOKEN\"
          echo \"cert is $CERT\"
          echo \"one cert line: $(echo \"$CERT\" | sed -n 2p)\"
          echo '::add-mask::runtime-value-77'
          echo 'generated runtime-value-77 here'
          echo \"::warning::careful with $TOKEN\"
          echo \"token in a summary: $TOKEN\" >> \"$GITHUB_STEP_SUMMARY\"
          exit 1
",
    );
    repo.write(
        "secrets.env",
        "# local secrets\nCERT=\"-----BEGIN-----\nMIIBsecretline2\n-----END-----\"\n",
    );
    let run = repo.gantry(&[
        "run",
        "--secret",
        "TOKEN=s3cr3t-t0ken",
        "--secret-file",
        "secrets.env",
    ]);
    run.expect_code(1);
    let out = run.stdout() + &run.stderr();
    let raw = ["s3cr3t-t0ken", "MIIBsecretline2", "runtime-value-77"];
    for value in raw {
        assert!(!out.contains(value), "{value} is shown:\n{out}");
    }
    assert!(out.contains("[leak] token is ***\n"), "{out}");
    assert!(out.contains("[leak] one cert line: ***\n"), "{out}");
    assert!(out.contains("[leak] generated *** here\n"), "{out}");
    assert!(out.contains("careful with ***"), "{out}");
    assert!(out.contains("token in a summary: ***"), "{out}");

    let stored = all_stored_text(&run_dir(&repo, 1));
    assert!(
        stored.len() >= 3,
        "events, a log and the summary: {stored:?}"
    );
    for (path, text) in &stored {
        for value in raw {
            assert!(
                !text.contains(value),
                "{value} is stored in {path}:\n{text}"
            );
        }
    }
    let log = std::fs::read_to_string(run_dir(&repo, 1).join("logs/leak.log")).expect("log");
    assert!(log.contains("token is ***\n"), "{log}");
}

#[test]
fn vars_reach_the_vars_context() {
    let repo = repo_with(
        "on: push
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: echo \"region=${{ vars.REGION }} missing=[${{ vars.MISSING }}]\"
",
    );
    let run = repo.gantry(&["run", "--var", "REGION=eu-west"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("[show] region=eu-west missing=[]\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn dispatch_inputs_are_typed() {
    let repo = repo_with(
        "on:
  workflow_dispatch:
    inputs:
      count:
        type: number
        required: true
      dry:
        type: boolean
        default: false
      level:
        type: choice
        options: [info, debug]
        default: info
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo 'count=${{ toJSON(inputs.count) }} dry=${{ toJSON(inputs.dry) }}'
          echo 'as event inputs: count=${{ toJSON(github.event.inputs.count) }}'
          echo \"dry is true: ${{ inputs.dry == true }}\"
          echo \"level=${{ inputs.level }} event level=${{ github.event.inputs.level }}\"
",
    );
    let run = repo.gantry(&[
        "run",
        "--event",
        "workflow_dispatch",
        "--input",
        "count=41",
        "--input",
        "dry=true",
    ]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("[show] count=41 dry=true\n"), "{out}");
    assert!(
        out.contains("[show] as event inputs: count=\"41\"\n"),
        "{out}"
    );
    assert!(out.contains("[show] dry is true: true\n"), "{out}");
    assert!(
        out.contains("[show] level=info event level=info\n"),
        "{out}"
    );
}
