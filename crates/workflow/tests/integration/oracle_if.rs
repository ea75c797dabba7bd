//! `if-conditions.json`: how GitHub's parser normalises job and step `if:` values, and which
//! ones it rejects.

use gantry_workflow::parse_workflow;

use crate::support::{error_places, github_location, read_json};

#[test]
fn if_conditions_match_github() {
    let cases = read_json("workflows/if-conditions.json");
    let cases = cases.as_array().expect("an array of cases");
    let mut failures = Vec::new();
    for case in cases {
        let level = case["level"].as_str().expect("level");
        let raw = case["if"].as_str().expect("if");
        let source = case["workflow"].as_str().expect("workflow");
        let parsed = parse_workflow(".github/workflows/if.yml", source);
        let expected = case["expected_expression"].as_str();
        match expected {
            Some(expected) => {
                let workflow = parsed.workflow.as_ref().expect("a workflow");
                let actual = if level == "job" {
                    workflow.job("test").map(|j| j.condition.expression.clone())
                } else {
                    workflow
                        .job("test")
                        .and_then(|j| j.steps.iter().find(|s| s.condition.raw.is_some()))
                        .map(|s| s.condition.expression.clone())
                };
                if parsed.has_errors() || actual.as_deref() != Some(expected) {
                    failures.push(format!(
                        "{level} if {raw:?}: expected {expected:?}, got {actual:?} with errors {:?}",
                        parsed.errors().map(|d| &d.message).collect::<Vec<_>>()
                    ));
                }
            }
            None => {
                let expected_place = case["errors"]
                    .as_array()
                    .and_then(|e| e.first())
                    .and_then(|e| e.as_str())
                    .and_then(github_location);
                let places = error_places(&parsed);
                let line_ok =
                    expected_place.is_none_or(|(line, _)| places.iter().any(|(l, _)| *l == line));
                if !parsed.has_errors() || !line_ok {
                    failures.push(format!(
                        "{level} if {raw:?}: expected an error at {expected_place:?}, got {:?}",
                        parsed
                            .errors()
                            .map(|d| (d.line_column(), &d.message))
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    println!(
        "if-conditions: {}/{} cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}
