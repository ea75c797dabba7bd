//! `reader-index.json`: the 195 workflow files of GitHub's parser test suite. For each file:
//! are errors expected, and do ours point at the same lines; for valid files, are the job ids
//! the same.

use gantry_workflow::model::Workflow;
use gantry_workflow::validate::call::{DefaultPermissions, validate_call};
use gantry_workflow::yaml::YamlLimits;
use gantry_workflow::{Diagnostic, ParseOptions, parse_workflow, parse_workflow_with};
use serde_json::Value;

use crate::support::{github_location, read_json};

/// Checks the calls of `workflow` (named `file`) against the called workflows the test gives,
/// recursively, and returns the diagnostics with the file they point into.
fn check_calls(
    file: &str,
    workflow: &Workflow,
    called: &Value,
    defaults: DefaultPermissions,
    depth: usize,
    out: &mut Vec<(String, Diagnostic)>,
) {
    if depth > 4 {
        return;
    }
    for job in &workflow.jobs {
        let Some(call) = &job.call else { continue };
        let Some(source) = called[call.uses.value.as_str()].as_str() else {
            continue;
        };
        let parsed = parse_workflow(&call.uses.value, source);
        for d in &parsed.diagnostics {
            out.push((call.uses.value.clone(), d.clone()));
        }
        let Some(callee) = &parsed.workflow else {
            continue;
        };
        for d in validate_call(workflow, job, callee, defaults) {
            out.push((file.to_owned(), d));
        }
        check_calls(&call.uses.value, callee, called, defaults, depth + 1, out);
    }
}

/// Files where Gantry deliberately differs from the expected output, and why.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "errors-anchor-tag.yml",
        "GitHub has accepted YAML anchors since 2025-09; the suite predates that",
    ),
    (
        "events-mapping-all.yml",
        "it lists both `branches` and `branches-ignore` for one event; GitHub.com rejects that (\"you may only define one of `branches` and `branches-ignore` for a single event\")",
    ),
    (
        "background-steps.yml",
        "experimental background steps (wait, cancel) are not supported by Gantry",
    ),
];

/// The share of files that must keep passing (raise it when more pass).
const FLOOR: f64 = 0.96;

#[test]
fn reader_suite_matches_github() {
    let index = read_json("workflows/reader-index.json");
    let entries = index.as_array().expect("an array");
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut deliberate = 0;
    // Expected errors with a location, and how many of ours start at the same column too.
    let mut located = 0;
    let mut exact_column = 0;
    for entry in entries {
        let file = entry["file"].as_str().expect("file");
        let short = file.rsplit('/').next().unwrap_or(file);
        if DELIBERATE.iter().any(|(f, _)| *f == short) {
            deliberate += 1;
            continue;
        }
        let name = entry["workflow_file_name"].as_str().expect("name");
        let source = entry["workflow"].as_str().expect("workflow");
        let options = &entry["options"];
        let mut limits = YamlLimits::default();
        if let Some(size) = options["max-file-size"].as_u64() {
            limits.max_file_size = usize::try_from(size).expect("small");
        }
        if let Some(depth) = options["max-depth"].as_u64() {
            limits.max_depth = usize::try_from(depth).expect("small");
        }
        let mut parsed = parse_workflow_with(name, source, &ParseOptions { limits });
        let defaults = match options["permissions-policy"].as_str() {
            Some("LimitedRead") => DefaultPermissions::Restricted,
            _ => DefaultPermissions::Permissive,
        };
        // Diagnostics of called workflows, by file.
        let mut call_diagnostics: Vec<(String, Diagnostic)> = Vec::new();
        if let Some(workflow) = &parsed.workflow
            && !parsed.has_errors()
        {
            check_calls(
                name,
                workflow,
                &entry["reusable_workflows"],
                defaults,
                1,
                &mut call_diagnostics,
            );
        }
        // Where our diagnostics point (primary spans and labels), by file.
        let mut places: Vec<(String, u32, u32)> = Vec::new();
        let all = parsed
            .diagnostics
            .iter()
            .map(|d| (name, d))
            .chain(call_diagnostics.iter().map(|(f, d)| (f.as_str(), d)));
        for (file, d) in all {
            for s in d.span.iter().chain(d.labels.iter().map(|(s, _)| s)) {
                places.push((file.to_owned(), s.start.line, s.start.column));
            }
        }
        parsed.diagnostics.extend(
            call_diagnostics
                .into_iter()
                .filter(|(_, d)| d.is_error())
                .map(|(_, d)| d),
        );
        let expected_errors: Vec<&str> = entry["expected_errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        let outcome = if expected_errors.is_empty() {
            if parsed.has_errors() {
                Err(format!(
                    "unexpected errors: {:?}",
                    parsed
                        .errors()
                        .map(|d| format!("{:?} {}", d.line_column(), d.message))
                        .collect::<Vec<_>>()
                ))
            } else {
                // With `include-source`, ids are objects holding the literal in `lit`.
                let expected_ids: Option<Vec<&str>> =
                    entry["expected"]["jobs"].as_array().map(|jobs| {
                        jobs.iter()
                            .filter_map(|j| j["id"].as_str().or_else(|| j["id"]["lit"].as_str()))
                            .collect()
                    });
                let ids: Vec<&str> = parsed
                    .workflow
                    .as_ref()
                    .map(|w| w.jobs.iter().map(|j| j.id.value.as_str()).collect())
                    .unwrap_or_default();
                match expected_ids {
                    Some(expected) if expected != ids => {
                        Err(format!("job ids {ids:?}, expected {expected:?}"))
                    }
                    _ => Ok(()),
                }
            }
        } else if !parsed.has_errors() {
            Err(format!("no error, expected {expected_errors:?}"))
        } else {
            let missing: Vec<&str> = expected_errors
                .iter()
                .copied()
                .filter(|e| {
                    let file = e
                        .split(" (Line: ")
                        .next()
                        .unwrap_or("")
                        .trim_start_matches("In ")
                        .to_owned();
                    let Some((line, column)) = github_location(e) else {
                        return false;
                    };
                    located += 1;
                    let same_file = |f: &String| *f == file || !file.contains('/');
                    if places
                        .iter()
                        .any(|(f, l, c)| same_file(f) && *l == line && *c == column)
                    {
                        exact_column += 1;
                    }
                    !places.iter().any(|(f, l, _)| same_file(f) && *l == line)
                })
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "expected errors not found at their line: {missing:?}; ours: {:?}",
                    parsed
                        .errors()
                        .map(|d| format!("{:?} {}", d.line_column(), d.message))
                        .collect::<Vec<_>>()
                ))
            }
        };
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{short}: {why}")),
        }
    }
    let total = entries.len() - deliberate;
    let rate = passed as f64 / total as f64;
    println!(
        "reader suite: {passed}/{total} files pass ({:.1}%), {deliberate} deliberate differences",
        rate * 100.0
    );
    println!(
        "  expected errors with a location: {located}; ours at the same line and column: {exact_column}"
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(rate >= FLOOR, "pass rate {rate} fell below {FLOOR}");
}
