//! Output that is huge, endless on one line or not UTF-8, and steps that cannot start: the run
//! goes on with bounded memory and clear messages.

use super::{Background, repo_with, run_dir, stored_summary, summary_job};
use std::time::Duration;

/// The peak resident memory of a running process so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn huge_output_keeps_memory_bounded_and_is_stored_up_to_the_log_cap() {
    const LINE: &str = "a line of build output, as ordinary as they come";
    const LINES_BYTES: u64 = 100_000_000;
    const LONG_BYTES: u64 = 50_000_000;
    let repo = repo_with(&format!(
        "on: push
jobs:
  lines:
    runs-on: ubuntu-latest
    steps:
      - run: yes '{LINE}' | head -c {LINES_BYTES}
  long-line:
    runs-on: ubuntu-latest
    steps:
      - run: head -c {LONG_BYTES} /dev/zero | tr '\\0' x
"
    ));
    let mut run = Background::spawn(&repo, &["run", "--jobs-parallel", "2"]);
    let pid = run.pid();
    let mut peak = 0;
    let code = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = run.child.try_wait().expect("try_wait") {
            break status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, 0, "{}", run.stderr());
    assert!(peak > 0, "the memory of gantry was measured");
    assert!(
        peak < 150 * 1024,
        "gantry's peak memory was {} MiB",
        peak / 1024
    );

    // A job's stored log keeps its first 64 MiB, then says loudly that the rest was not kept;
    // a log under the cap holds every byte: the output plus the header and the end of the job.
    let logs = run_dir(&repo, 1).join("logs");
    let size = |name: &str| std::fs::metadata(logs.join(name)).expect("log").len();
    let overhead = 1_000;
    const CAP: u64 = 64 * 1024 * 1024;
    let lines = size("lines.log");
    assert!(
        (CAP..CAP + overhead).contains(&lines),
        "lines.log is {lines} bytes"
    );
    let stored = std::fs::read(logs.join("lines.log")).expect("log");
    let tail = String::from_utf8_lossy(&stored[stored.len() - 200..]).into_owned();
    assert!(
        tail.contains("log truncated: output beyond 64 MiB was not kept"),
        "the truncated log ends with a marker: {tail:?}"
    );
    let long = size("long-line.log");
    assert!(
        (LONG_BYTES..LONG_BYTES + overhead).contains(&long),
        "long-line.log is {long} bytes"
    );
    let summary = stored_summary(&repo, 1);
    assert_eq!(summary_job(&summary, "lines")["conclusion"], "success");
    // The terminal got every line, each with its prefix.
    let shown = std::fs::read(&run.stdout).expect("stdout");
    let prefixed = shown
        .split(|b| *b == b'\n')
        .filter(|l| *l == format!("[lines] {LINE}").as_bytes())
        .count() as u64;
    assert_eq!(prefixed, LINES_BYTES / (LINE.len() as u64 + 1));
    // The long line is shown once, cut to a readable length, saying where the rest is.
    let long_lines: Vec<&[u8]> = shown
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"[long-line] x"))
        .collect();
    assert_eq!(long_lines.len(), 1);
    let elided = LONG_BYTES - 64 * 1024;
    let marker = format!(" … [{elided} more bytes of this line in the job's log]");
    assert!(
        long_lines[0].ends_with(marker.as_bytes()),
        "{}",
        String::from_utf8_lossy(&long_lines[0][long_lines[0].len() - 200..])
    );
}

#[test]
fn output_that_is_not_utf8_is_shown_lossily() {
    let repo = repo_with(
        r#"on: push
jobs:
  bytes:
    runs-on: ubuntu-latest
    steps:
      - run: printf 'caf\303\251 \377\376 end\n'
"#,
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(0);
    let out = String::from_utf8(run.output.stdout.clone()).expect("stdout is UTF-8");
    assert!(out.contains("[bytes] café \u{fffd}\u{fffd} end\n"), "{out}");
    let log = std::fs::read_to_string(run_dir(&repo, 1).join("logs/bytes.log")).expect("log");
    assert!(log.contains("café \u{fffd}\u{fffd} end\n"), "{log}");
}

#[test]
fn a_missing_shell_is_a_clear_step_failure() {
    let repo = repo_with(
        r#"on: push
jobs:
  odd:
    runs-on: ubuntu-latest
    steps:
      - name: Needs fish
        shell: fish-that-is-not-installed {0}
        run: echo hi
      - if: always()
        run: echo after the failure
"#,
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("[odd] error: shell `fish-that-is-not-installed {0}`: `fish-that-is-not-installed` was not found in PATH"),
        "{out}"
    );
    assert!(out.contains("[odd] ✗ Needs fish failed"), "{out}");
    assert!(out.contains("[odd] after the failure\n"), "{out}");
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
}

#[test]
fn a_missing_working_directory_is_a_clear_step_failure() {
    let repo = repo_with(
        r#"on: push
jobs:
  odd:
    runs-on: ubuntu-latest
    steps:
      - name: In a folder that is not there
        working-directory: no/such/dir
        run: echo hi
"#,
    );
    let run = repo.gantry(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("[odd] error: working-directory `no/such/dir` does not exist"),
        "{out}"
    );
    assert!(
        out.contains("── odd failed at \"In a folder that is not there\""),
        "{out}"
    );
}
