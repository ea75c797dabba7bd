//! Finding workflow files in a repository and reading them from disk.

use std::fs;

use gantry_workflow::load::{discover_workflows, load_workflow};

#[test]
fn discover_finds_yml_and_yaml_in_both_folders_sorted() {
    let repo = tempfile::tempdir().expect("a temporary directory");
    let root = repo.path();
    for dir in [
        ".github/workflows",
        ".gantry/workflows",
        ".github/workflows/nested",
    ] {
        fs::create_dir_all(root.join(dir)).expect("create dirs");
    }
    for file in [
        ".github/workflows/z.yml",
        ".github/workflows/a.yaml",
        ".github/workflows/notes.md",
        ".github/workflows/nested/deep.yml",
        ".gantry/workflows/local.yml",
        "ci.yml",
    ] {
        fs::write(root.join(file), "on: push\n").expect("write");
    }
    let found: Vec<String> = discover_workflows(root)
        .expect("discovery works")
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(
        found,
        [
            ".gantry/workflows/local.yml",
            ".github/workflows/a.yaml",
            ".github/workflows/z.yml"
        ]
    );
}

#[test]
fn discover_without_workflow_folders_finds_nothing() {
    let repo = tempfile::tempdir().expect("a temporary directory");
    assert!(
        discover_workflows(repo.path())
            .expect("no error")
            .is_empty()
    );
}

#[test]
fn load_reads_parses_and_reports() {
    let repo = tempfile::tempdir().expect("a temporary directory");
    let good = repo.path().join("good.yml");
    fs::write(
        &good,
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n",
    )
    .expect("write");
    let loaded = load_workflow(&good).expect("readable");
    assert!(loaded.parsed.diagnostics.is_empty());
    assert_eq!(loaded.parsed.workflow.expect("a workflow").jobs.len(), 1);

    let bad = repo.path().join("bad.yml");
    fs::write(&bad, b"on: push\njobs:\n  a: \xc3\x28\n").expect("write");
    let loaded = load_workflow(&bad).expect("readable");
    let d = &loaded.parsed.diagnostics[0];
    assert_eq!(d.code, "invalid-utf8");
    assert_eq!(d.line_column(), Some((3, 6)));

    assert!(load_workflow(&repo.path().join("missing.yml")).is_err());
}
