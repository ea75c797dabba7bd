//! Acceptance: the official evaluator's results in testdata/oracles/expressions.json.

use crate::support::{Case, load, run_all};

const COMPAT_DOC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/compat/expressions.md"
);

#[test]
fn official_expression_cases_pass_and_every_failure_is_documented() {
    let cases: Vec<Case> = load("expressions.json")
        .as_array()
        .expect("expressions.json is an array")
        .iter()
        .map(Case::from_json)
        .collect();
    assert!(cases.len() > 2800, "the oracle has all its cases");

    let (passed, failures) = run_all(&cases);
    let rate = passed as f64 * 100.0 / cases.len() as f64;
    println!(
        "expressions.json: {passed}/{} passed ({rate:.2}%)",
        cases.len()
    );
    for (id, why) in &failures {
        println!("  FAIL {id}: {why}");
    }

    // Exact error text is a goal, not a requirement: report how many messages match.
    let errors: Vec<&Case> = cases.iter().filter(|c| c.kind == "Error").collect();
    let mut differing = Vec::new();
    for case in &errors {
        let want = case.expected["error"].as_str().unwrap_or_default();
        match case.run() {
            Err(e) if e.message == want => {}
            Err(e) => differing.push(format!("{}: want {want:?}, got {:?}", case.id, e.message)),
            Ok(_) => {}
        }
    }
    println!(
        "error messages identical to the official text: {}/{}",
        errors.len() - differing.len(),
        errors.len()
    );
    for d in &differing {
        println!("  MESSAGE {d}");
    }

    let doc = std::fs::read_to_string(COMPAT_DOC).unwrap_or_default();
    let undocumented: Vec<&str> = failures
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !doc.contains(&format!("`{id}`")))
        .collect();
    assert!(rate >= 99.5, "pass rate {rate:.2}% is below 99.5%");
    assert!(
        undocumented.is_empty(),
        "failing cases not listed in docs/compat/expressions.md: {undocumented:?}"
    );
}
