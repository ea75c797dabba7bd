//! Informational: how often Gantry agrees with act's own expression tests
//! (testdata/oracles/act-expressions.json). act differs from GitHub on purpose in places.

use crate::support::{Case, load, run_all};

#[test]
fn act_expression_agreement_is_reported() {
    let file = load("act-expressions.json");
    let cases: Vec<Case> = file["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .map(Case::from_json)
        .collect();
    let (passed, failures) = run_all(&cases);
    let rate = passed as f64 * 100.0 / cases.len() as f64;
    println!(
        "act-expressions.json: {passed}/{} agree ({rate:.2}%)",
        cases.len()
    );
    for (id, why) in &failures {
        println!("  DIFF {id}: {why}");
    }
    // act is not GitHub; only a sanity floor is asserted.
    assert!(rate > 90.0, "agreement with act dropped to {rate:.2}%");
}
