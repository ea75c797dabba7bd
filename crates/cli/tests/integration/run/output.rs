//! What the terminal shows: live lines prefixed by their job, `--quiet`, `--json`, and the
//! summary at the end (table, the failing step's last lines, step summaries).

use super::{count_lines, repo_with};
use serde_json::Value;

#[test]
fn every_line_is_shown_once_prefixed_by_its_job() {
    let repo = repo_with(
        "on: push
jobs:
  alpha:
    runs-on: ubuntu-latest
    steps:
      - run: for i in 1 2 3 4 5; do echo \"alpha line $i\"; done
  beta:
    runs-on: ubuntu-latest
    steps:
      - run: |
          for i in 1 2 3 4 5; do echo \"beta line $i\"; done
          echo 'to stderr' >&2
          printf 'no newline at the end'
",
    );
    let run = repo.gantry(&["run", "--jobs-parallel", "2"]);
    run.expect_code(0);
    let out = run.stdout();
    for i in 1..=5 {
        assert_eq!(
            count_lines(&out, &format!("[alpha] alpha line {i}")),
            1,
            "{out}"
        );
        assert_eq!(
            count_lines(&out, &format!("[beta] beta line {i}")),
            1,
            "{out}"
        );
    }
    assert_eq!(count_lines(&out, "[beta] to stderr"), 1, "{out}");
    assert_eq!(
        count_lines(&out, "[beta] no newline at the end"),
        1,
        "{out}"
    );
    // Nothing of a step's output appears without its prefix.
    assert!(
        !out.lines()
            .any(|l| l.contains("line") && !l.starts_with('[')),
        "{out}"
    );
}

const ONE_FAILS: &str = "on: push
jobs:
  quiet-success:
    runs-on: ubuntu-latest
    steps:
      - run: echo 'nothing to see here'
  loud-failure:
    runs-on: ubuntu-latest
    steps:
      - name: Prepare
        run: echo 'preparation output'
      - name: Check
        run: |
          echo 'check output before failing'
          exit 4
";

#[test]
fn quiet_shows_only_failures_and_the_summary() {
    let repo = repo_with(ONE_FAILS);
    let run = repo.gantry(&["run", "--quiet"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(!out.contains("nothing to see here"), "{out}");
    assert!(!out.contains("preparation output"), "{out}");
    assert!(!out.contains("Job started"), "{out}");
    assert!(!out.contains("changed paths"), "{out}");
    assert!(
        out.contains("[loud-failure] check output before failing\n"),
        "{out}"
    );
    assert!(out.contains("Check failed"), "{out}");
    assert!(
        out.contains("│ quiet-success"),
        "the summary table is shown:\n{out}"
    );
    assert!(out.contains("1 job(s) failed"), "{out}");
}

#[test]
fn json_prints_one_event_per_line() {
    let repo = repo_with(ONE_FAILS);
    let run = repo.gantry(&["run", "--json"]);
    run.expect_code(1);
    let out = run.stdout();
    let values: Vec<Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let (summary, events) = values.split_last().expect("some lines");
    assert_eq!(
        summary["summary"]["number"], 1,
        "the last line is the summary"
    );
    let kinds = |job: &str| -> Vec<&str> {
        events
            .iter()
            .filter(|e| e["job"] == job)
            .map(|e| e["event"].as_str().expect("event kind"))
            .collect()
    };
    assert_eq!(kinds("quiet-success").first(), Some(&"job_started"));
    assert_eq!(kinds("quiet-success").last(), Some(&"job_finished"));
    assert!(kinds("loud-failure").contains(&"step_finished"));
    let logged: String = events
        .iter()
        .filter(|e| e["event"] == "log" && e["job"] == "loud-failure")
        .map(|e| e["text"].as_str().expect("text"))
        .collect();
    assert!(logged.contains("check output before failing\n"), "{logged}");
    let finished = events
        .iter()
        .find(|e| e["event"] == "job_finished" && e["job"] == "loud-failure")
        .expect("job_finished");
    assert_eq!(finished["conclusion"], "failure");
    assert!(events.iter().all(|e| e["at_ms"].is_i64()));
}

#[test]
fn the_summary_shows_the_failing_steps_last_20_lines() {
    let repo = repo_with(
        "on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: Compile
        run: |
          for i in $(seq 1 30); do echo \"compiler line $i\"; done
          exit 2
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    let tail_start = out
        .find("── build failed at \"Compile\"; last lines:")
        .unwrap_or_else(|| panic!("no tail in:\n{out}"));
    let tail = &out[tail_start..];
    // 19 lines of output and the error make the last 20.
    assert!(!tail.contains("compiler line 11\n"), "{tail}");
    for i in 12..=30 {
        assert!(tail.contains(&format!("  compiler line {i}\n")), "{tail}");
    }
    assert!(
        tail.contains("  Error: Process completed with exit code 2.\n"),
        "{tail}"
    );
}

#[test]
fn step_summaries_are_shown_at_the_end() {
    let repo = repo_with(
        "on: push
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo '### Coverage' >> \"$GITHUB_STEP_SUMMARY\"
          echo '- 93% of lines' >> \"$GITHUB_STEP_SUMMARY\"
",
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("── Summary of report\n### Coverage\n- 93% of lines\n"),
        "{out}"
    );
}

/// The output with durations (`12ms`, `1.5s`, `2m05s`), which vary from run to run, shown as
/// `[t]`; table rows keep their width.
fn without_durations(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut replaced = line
            .split(' ')
            .map(|word| if is_duration(word) { "[t]" } else { word })
            .collect::<Vec<_>>()
            .join(" ");
        if line.starts_with('│') {
            let missing = line.chars().count() - replaced.chars().count();
            if let Some(end) = replaced.rfind('│') {
                replaced.insert_str(end, &" ".repeat(missing));
            }
        }
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

fn is_duration(word: &str) -> bool {
    let ms = word
        .strip_suffix("ms")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let s = word.strip_suffix('s').is_some_and(|n| {
        n.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.len() == 1
        })
    });
    let m = word.strip_suffix('s').is_some_and(|n| {
        n.split_once('m').is_some_and(|(a, b)| {
            !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.len() == 2
        })
    });
    ms || s || m
}

#[test]
fn a_failing_run_reads_well() {
    let repo = repo_with(
        "name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - id: v
        name: Pick the version
        run: |
          echo 'version=1.2.3' >> \"$GITHUB_OUTPUT\"
          echo 'building 1.2.3'
          echo '### Built 1.2.3' >> \"$GITHUB_STEP_SUMMARY\"
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        suite: [unit, e2e]
    steps:
      - name: Run the ${{ matrix.suite }} tests
        run: |
          echo \"testing ${{ needs.build.outputs.version }}\"
          if [ ${{ matrix.suite }} = e2e ]; then
            for i in $(seq 1 25); do echo \"e2e check $i ok\"; done
            echo '::error file=tests/e2e.rs,line=12::login page did not load'
            exit 1
          fi
      - name: Upload report
        if: always()
        run: echo uploaded
  deploy:
    needs: test
    runs-on: ubuntu-latest
    steps: [run: echo deploying]
",
    );
    let run = repo.gantry(&["run", "--jobs-parallel", "1"]);
    run.expect_code(1);
    insta::assert_snapshot!(without_durations(&run.stdout()));
}

#[test]
fn quiet_shows_the_output_of_the_step_a_timed_out_job_hung_in() {
    let repo = repo_with(
        "on: push
jobs:
  fine:
    runs-on: ubuntu-latest
    steps:
      - run: echo 'all good here'
  slow:
    runs-on: ubuntu-latest
    timeout-minutes: 0.01
    steps:
      - name: Hang
        run: |
          echo 'connecting to the database'
          sleep 30
      - if: always()
        run: echo 'cleaning up'
",
    );
    let run = repo.gantry(&["run", "--quiet"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(!out.contains("all good here"), "{out}");
    assert_eq!(
        count_lines(&out, "[slow] connecting to the database"),
        1,
        "{out}"
    );
    assert!(out.contains("[slow] ⊘ Hang cancelled"), "{out}");
}
