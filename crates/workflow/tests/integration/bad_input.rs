//! Hostile or broken input: every case is a clear, located diagnostic, never a panic, and
//! stays cheap (the time and peak memory of each case are printed and bounded).

use std::path::Path;
use std::time::Duration;

use gantry_workflow::load::load_workflow_bytes;
use gantry_workflow::{ParsedWorkflow, parse_workflow};
use proptest::prelude::*;

/// Peak resident memory of this test process (nextest runs each test in its own process).
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time this thread has used: unlike wall-clock time it does not grow when the machine is
/// busy with other tests, so the 1 s bound measures the parser, not the load.
fn thread_cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            micros(u.user_time()) + micros(u.system_time())
        })
        .unwrap_or_default()
}

/// Parses `source`, prints the time and memory, and returns the result. Every bad input must
/// give an error with a location, within 1 s of CPU time and 100 MiB.
fn check_bad(name: &str, source: &str) -> ParsedWorkflow {
    let start = thread_cpu_time();
    let parsed = parse_workflow(name, source);
    let elapsed = thread_cpu_time().saturating_sub(start);
    let peak = peak_memory_kib();
    println!(
        "{name}: {elapsed:?} CPU, peak {peak:?} KiB, {:?}",
        parsed.diagnostics.first().map(|d| (d.code, &d.message))
    );
    assert!(parsed.has_errors(), "{name}: no error");
    let first = &parsed.diagnostics[0];
    assert!(
        first.span.is_some(),
        "{name}: the diagnostic has no location: {first:?}"
    );
    assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
    if let Some(peak) = peak {
        assert!(peak < 100 * 1024, "{name} used {peak} KiB");
    }
    parsed
}

#[test]
fn two_mib_file_is_too_large() {
    let mut source = String::from("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n");
    while source.len() < 2 * 1024 * 1024 {
        source.push_str("      - run: echo 0123456789012345678901234567890123456789\n");
    }
    let parsed = check_bad("big.yml", &source);
    assert_eq!(parsed.diagnostics[0].code, "file-too-large");
    assert!(parsed.workflow.is_none());
}

#[test]
fn ten_thousand_nested_sequences_are_rejected() {
    let source = format!(
        "on: push\njobs: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let parsed = check_bad("deep.yml", &source);
    assert!(matches!(
        parsed.diagnostics[0].code,
        "max-depth" | "yaml-syntax"
    ));
}

#[test]
fn deep_block_nesting_is_rejected() {
    let mut source = String::from("on: push\njobs:\n");
    for depth in 1..200 {
        source.push_str(&" ".repeat(depth * 2));
        source.push_str("- \n");
    }
    let parsed = check_bad("deep-block.yml", &source);
    assert!(matches!(
        parsed.diagnostics[0].code,
        "max-depth" | "yaml-syntax"
    ));
}

#[test]
fn billion_laughs_fails_fast() {
    let mut source = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut previous = 'a';
    for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] {
        let refs = vec![format!("*{previous}"); 9].join(",");
        source.push_str(&format!("{name}: &{name} [{refs}]\n"));
        previous = name;
    }
    source.push_str("on: push\njobs: *i\n");
    let parsed = check_bad("bomb.yml", &source);
    assert_eq!(parsed.diagnostics[0].code, "yaml-too-complex");
}

#[test]
fn invalid_utf8_is_located() {
    let bytes = b"on: push\njobs:\n  a:\n    runs-on: \xff\xfe\n".to_vec();
    let start = thread_cpu_time();
    let loaded = load_workflow_bytes("bad.yml", Path::new("bad.yml"), bytes);
    assert!(thread_cpu_time().saturating_sub(start) < Duration::from_secs(1));
    let d = &loaded.parsed.diagnostics[0];
    assert_eq!(d.code, "invalid-utf8");
    assert_eq!(d.line_column(), Some((4, 14)));
    let text = d.render("bad.yml", &loaded.source, false);
    assert!(text.contains("bad.yml:4:14"), "{text}");
}

#[test]
fn tabs_for_indentation_are_located() {
    let parsed = check_bad("tabs.yml", "on: push\njobs:\n\tbuild:\n\t\truns-on: x\n");
    assert_eq!(parsed.diagnostics[0].line_column().map(|(l, _)| l), Some(3));
    assert!(
        parsed.diagnostics[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("spaces")
    );
}

#[test]
fn empty_file_is_reported() {
    for source in ["", "\n", "# only a comment\n", "---\n"] {
        let parsed = check_bad("empty.yml", source);
        assert_eq!(parsed.diagnostics[0].code, "empty-workflow", "{source:?}");
    }
}

#[test]
fn top_level_list_or_string_is_a_type_error() {
    for source in ["- on: push\n- jobs: {}\n", "just a string\n", "42\n"] {
        let parsed = check_bad("top.yml", source);
        assert_eq!(parsed.diagnostics[0].code, "wrong-type", "{source:?}");
        assert_eq!(
            parsed.diagnostics[0].line_column(),
            Some((1, 1)),
            "{source:?}"
        );
        assert!(parsed.workflow.is_none());
    }
}

#[test]
fn merge_keys_are_rejected_with_their_location() {
    let source = "defaults: &d\n  runs-on: x\non: push\njobs:\n  a:\n    <<: *d\n    steps:\n      - run: echo\n";
    let parsed = check_bad("merge.yml", source);
    assert_eq!(parsed.diagnostics[0].code, "yaml-merge-key");
    assert_eq!(parsed.diagnostics[0].line_column(), Some((6, 5)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(source in ".{0,400}") {
        let _ = parse_workflow("any.yml", &source);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = load_workflow_bytes("any.yml", Path::new("any.yml"), bytes);
    }

    #[test]
    fn workflow_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("on: push\n"), Just("jobs:\n"), Just("  a:\n"), Just("    runs-on: x\n"),
                Just("    steps:\n"), Just("      - run: echo ${{ github.ref }}\n"),
                Just("    needs: [a, b]\n"), Just("    if: ${{ success( }}\n"), Just("  - \n"),
                Just("&x "), Just("*x\n"), Just("\t"), Just("'"), Just("\""), Just("{"), Just("["),
                Just("    strategy:\n      matrix:\n        x: [1, 2]\n"), Just("<<: *x\n"),
                Just("    uses: ./.github/workflows/x.yml\n"), Just("      - uses: a/b@v1\n"),
            ],
            0..30,
        )
    ) {
        let source: String = parts.concat();
        let _ = parse_workflow("any.yml", &source);
    }
}
