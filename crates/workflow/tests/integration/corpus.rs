//! `tests/corpus/valid` must parse without any diagnostic; each file of `tests/corpus/invalid`
//! has one mistake, and its rendered diagnostics are a reviewed snapshot.

use std::path::PathBuf;

use gantry_workflow::diagnostic::render_all;
use gantry_workflow::parse_workflow;

fn corpus(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn valid_corpus_has_no_diagnostics() {
    let files = corpus("valid");
    assert!(files.len() >= 10, "only {} valid workflows", files.len());
    for (name, text) in &files {
        let parsed = parse_workflow(&format!(".github/workflows/{name}"), text);
        assert!(
            parsed.diagnostics.is_empty(),
            "{name}:\n{}",
            render_all(&parsed.diagnostics, name, text, false)
        );
        let workflow = parsed.workflow.expect("a workflow");
        assert!(!workflow.jobs.is_empty(), "{name} has no jobs");
    }
    println!(
        "valid corpus: {} workflows without diagnostics",
        files.len()
    );
}

#[test]
fn invalid_corpus_diagnostics_match_snapshots() {
    let files = corpus("invalid");
    assert!(files.len() >= 40, "only {} invalid workflows", files.len());
    for (name, text) in &files {
        let path = format!("tests/corpus/invalid/{name}");
        let parsed = parse_workflow(&path, text);
        assert!(!parsed.diagnostics.is_empty(), "{name} has no diagnostic");
        for d in &parsed.diagnostics {
            assert!(d.span.is_some(), "{name}: {} has no location", d.code);
            assert!(
                d.help.is_some(),
                "{name}: {} says not how to fix it",
                d.code
            );
        }
        let rendered = render_all(&parsed.diagnostics, &path, text, false);
        let stem = name.trim_end_matches(".yml");
        insta::assert_snapshot!(stem, rendered);
    }
    println!(
        "invalid corpus: {} workflows, each with its snapshot",
        files.len()
    );
}

#[test]
fn json_diagnostics_carry_positions() {
    let text =
        "on: push\njobs:\n  a:\n    runs-on: x\n    needs: b\n    steps:\n      - run: echo\n";
    let parsed = parse_workflow("ci.yml", text);
    let json: Vec<serde_json::Value> = parsed
        .diagnostics
        .iter()
        .map(|d| d.to_json("ci.yml"))
        .collect();
    insta::assert_json_snapshot!(json);
}
