//! Ctrl-C: the running step's process group gets SIGINT, then SIGTERM, then SIGKILL;
//! `if: always()` steps still run; the summary is printed; the exit code is 130; and nothing
//! the job started is left running.

use super::{
    Background, Scratch, interrupt, repo_with, send_signal, stored_summary, summary_job,
    wait_for_file,
};
use crate::harness::TestRepo;
use std::time::{Duration, Instant};

const SERVE: &str = r#"on: push
jobs:
  serve:
    runs-on: ubuntu-latest
    steps:
      - name: Serve forever
        run: |
          setsid sh -c 'trap "" TERM INT; sleep 1000' >/dev/null 2>&1 &
          echo $! > "$OUT/daemon.pid"
          trap 'echo INT >> "$OUT/signals"' INT
          trap 'echo TERM >> "$OUT/signals"' TERM
          echo serving
          touch "$OUT/ready"
          while true; do sleep 0.05 || true; done
      - name: Never reached
        run: touch "$OUT/never"
      - name: Clean up
        if: always()
        run: |
          echo cleaning up
          touch "$OUT/cleanup"
"#;

/// Whether a process is still running (a zombie is not).
fn is_running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Running processes whose environment holds `needle`.
fn processes_with_env(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var.starts_with(needle.as_bytes()))
            && is_running(&pid)
        {
            found.push(pid);
        }
    }
    found
}

/// The daemon `SERVE` started (its pid in `daemon.pid`) and every process carrying the run's
/// tracking id are gone (the sweep at the end of a job is synchronous; a killed process may take
/// a moment to leave the process table).
fn assert_nothing_left_running(scratch: &Scratch, gantry_pid: u32) {
    let daemon = scratch.read("daemon.pid");
    let daemon = daemon.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_running(daemon) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!is_running(daemon), "the daemon {daemon} is still running");
    let leftovers = processes_with_env(&format!("GANTRY_TRACKING_ID={gantry_pid}-"));
    assert!(leftovers.is_empty(), "left running: {leftovers:?}");
}

/// Starts a run, waits for its step's `ready` marker and presses Ctrl-C. The grace periods
/// are short, yet long enough for a step's trap to record each signal on a busy machine.
fn start_and_interrupt(repo: &TestRepo, scratch: &Scratch) -> Background {
    let env = scratch.env_arg();
    let run = Background::spawn(
        repo,
        &[
            "run",
            "--env",
            &env,
            "--interrupt-grace",
            "1",
            "--terminate-grace",
            "1.5",
        ],
    );
    wait_for_file(&scratch.file("ready"));
    interrupt(run.pid());
    run
}

#[test]
fn ctrl_c_stops_the_step_runs_always_steps_and_exits_130() {
    let scratch = Scratch::new();
    let repo = repo_with(SERVE);
    let mut run = start_and_interrupt(&repo, &scratch);
    let gantry_pid = run.pid();
    let code = run.wait();
    let out = run.stdout();
    assert_eq!(code, 130, "{out}\n{}", run.stderr());

    assert_eq!(
        scratch.read("signals"),
        "INT\nTERM\n",
        "SIGINT, then SIGTERM (then SIGKILL, which cannot be trapped)"
    );
    assert!(!scratch.exists("never"));
    assert!(scratch.exists("cleanup"), "the always() step ran:\n{out}");
    assert!(out.contains("[serve] cleaning up\n"), "{out}");
    assert!(out.contains("Cancelling the run"), "{out}");
    assert!(
        out.contains("Run interrupted"),
        "the summary is printed:\n{out}"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary_job(&summary, "serve")["conclusion"], "cancelled");

    // The daemon ignored SIGTERM and left the step's process group: it is gone all the same.
    assert_nothing_left_running(&scratch, gantry_pid);

    // The interrupted run reads the same later.
    let last = repo.gantry(&["run", "--last"]);
    last.expect_code(130);
    assert!(
        last.stdout().contains("Run interrupted"),
        "{}",
        last.stdout()
    );
}

#[test]
fn jobs_waiting_at_ctrl_c_never_start_unless_they_run_when_cancelled() {
    let scratch = Scratch::new();
    let repo = repo_with(
        r#"on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: |
          touch "$OUT/ready"
          sleep 30
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: touch "$OUT/second"
  report:
    needs: first
    if: cancelled()
    runs-on: ubuntu-latest
    steps:
      - run: echo "first was ${{ needs.first.result }}"
  final:
    needs: [second, report]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "final sees ${{ needs.second.result }} and ${{ needs.report.result }}"
"#,
    );
    let mut run = start_and_interrupt(&repo, &scratch);
    let code = run.wait();
    assert_eq!(code, 130, "{}", run.stdout());
    assert!(!scratch.exists("second"));
    let out = run.stdout();
    assert!(out.contains("[report] first was cancelled\n"), "{out}");
    assert!(
        out.contains("[final] final sees cancelled and success\n"),
        "{out}"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "report")["conclusion"], "success");
    assert_eq!(summary_job(&summary, "first")["conclusion"], "cancelled");
    assert_eq!(summary_job(&summary, "second")["conclusion"], "cancelled");
    let row = run
        .stdout()
        .lines()
        .find(|l| l.starts_with("│ second"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no row for second:\n{}", run.stdout()));
    assert!(row.contains("cancelled ("), "the reason is given: {row}");
    let duration = row.split('┆').next_back().unwrap_or_default();
    assert!(
        duration.trim_matches(['│', ' ']).is_empty(),
        "no duration: {row}"
    );
}

#[test]
fn a_second_ctrl_c_kills_the_step_at_once() {
    let scratch = Scratch::new();
    let repo = repo_with(
        r#"on: push
jobs:
  stubborn:
    runs-on: ubuntu-latest
    steps:
      - run: |
          trap 'echo INT >> "$OUT/signals"' INT
          trap 'echo TERM >> "$OUT/signals"' TERM
          touch "$OUT/ready"
          while true; do sleep 0.05 || true; done
      - if: always()
        run: touch "$OUT/always"
  after:
    needs: stubborn
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: touch "$OUT/after"
"#,
    );
    let env = scratch.env_arg();
    // The default grace periods: 7.5 s after SIGINT before SIGTERM.
    let mut run = Background::spawn(&repo, &["run", "--env", &env]);
    wait_for_file(&scratch.file("ready"));
    interrupt(run.pid());
    wait_for_file(&scratch.file("signals"));
    interrupt(run.pid());
    let code = run.wait();
    let out = run.stdout();
    assert_eq!(code, 130, "{out}\n{}", run.stderr());
    assert!(out.contains("Stopping now."), "{out}");
    assert_eq!(
        scratch.read("signals"),
        "INT\n",
        "the step was killed before its SIGTERM was due"
    );
    assert!(
        !scratch.exists("always"),
        "nothing more runs after a second Ctrl-C"
    );
    assert!(
        !scratch.exists("after"),
        "no job starts after a second Ctrl-C"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "after")["conclusion"], "cancelled");
    assert!(out.contains("Run interrupted"), "{out}");
}

#[test]
fn sigterm_cancels_the_run_like_ctrl_c_and_leaves_nothing_running() {
    let scratch = Scratch::new();
    let repo = repo_with(SERVE);
    let env = scratch.env_arg();
    let mut run = Background::spawn(
        &repo,
        &[
            "run",
            "--env",
            &env,
            "--interrupt-grace",
            "0.5",
            "--terminate-grace",
            "0.5",
        ],
    );
    let gantry_pid = run.pid();
    wait_for_file(&scratch.file("ready"));
    send_signal("TERM", gantry_pid);
    let code = run.wait();
    let out = run.stdout();
    assert_eq!(code, 130, "{out}\n{}", run.stderr());
    assert!(out.contains("SIGTERM: cancelling the run"), "{out}");
    assert!(out.contains("[serve] cleaning up\n"), "{out}");
    assert_nothing_left_running(&scratch, gantry_pid);
}

/// A step that waits (up to 30 s) for `$OUT/go`, then succeeds.
const WAIT_FOR_GO: &str = r#"on: push
jobs:
  wait:
    runs-on: ubuntu-latest
    steps:
      - run: |
          touch "$OUT/ready"
          for i in $(seq 600); do [ -e "$OUT/go" ] && exit 0; sleep 0.05; done
          exit 1
"#;

#[test]
fn a_closed_terminal_cancels_the_run() {
    let scratch = Scratch::new();
    let repo = repo_with(WAIT_FOR_GO);
    let env = scratch.env_arg();
    let mut run = Background::spawn(&repo, &["run", "--env", &env]);
    wait_for_file(&scratch.file("ready"));
    send_signal("HUP", run.pid());
    let code = run.wait();
    let out = run.stdout();
    assert_eq!(code, 130, "{out}\n{}", run.stderr());
    assert!(
        out.contains("SIGHUP (the terminal closed): cancelling the run"),
        "{out}"
    );
}

#[test]
fn under_nohup_a_closed_terminal_does_not_stop_the_run() {
    let scratch = Scratch::new();
    let repo = repo_with(WAIT_FOR_GO);
    let env = scratch.env_arg();
    let mut command = std::process::Command::new("nohup");
    command
        .arg(crate::harness::binary())
        .args(["run", "--env", &env])
        .current_dir(repo.path())
        .env("NO_COLOR", "1");
    let mut run = Background::start(command);
    wait_for_file(&scratch.file("ready"));
    // nohup execs gantry: the pid is gantry's. SIGHUP is still ignored, not caught.
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.pid())).expect("status");
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("SigIgn");
    assert_eq!(ignored & 1, 1, "SIGHUP is ignored:\n{status}");
    send_signal("HUP", run.pid());
    std::fs::write(scratch.file("go"), "").expect("go");
    let code = run.wait();
    let out = run.stdout();
    assert_eq!(code, 0, "{out}\n{}", run.stderr());
    assert!(!out.contains("SIGHUP"), "{out}");
}
