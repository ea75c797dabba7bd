//! No input makes the crate panic or overflow the stack.

use std::time::{Duration, Instant};

use gantry_expr::{Contexts, ParseOptions, Stage, Template, Value, evaluate, parse};
use proptest::prelude::*;

fn ctx() -> Contexts {
    let mut c = Contexts::new();
    c.insert(
        "github",
        Value::from(serde_json::json!({"event": {"a": [1, {"b": "x"}]}, "ref": "main"})),
    );
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        if let Ok(e) = parse(&s, &ParseOptions::runtime()) {
            let _ = evaluate(&e, &ctx());
        }
        if let Ok(t) = Template::parse(&s) {
            let _ = t.evaluate(&ctx());
        }
    }

    #[test]
    fn expression_like_text_never_panics(
        s in r"[a-z0-9_.*!<>=&|()\[\], '{}$-]{0,80}"
    ) {
        if let Ok(e) = parse(&s, &ParseOptions::runtime()) {
            let _ = evaluate(&e, &ctx());
        }
        let wrapped = format!("x ${{{{ {s} }}}} y");
        if let Ok(t) = Template::parse(&wrapped) {
            let _ = t.evaluate_to_string(&ctx());
        }
    }

    #[test]
    fn function_calls_with_odd_arguments_never_panic(
        f in prop::sample::select(vec!["contains", "startsWith", "endsWith", "format", "join", "toJSON", "fromJSON", "case"]),
        args in prop::collection::vec(r"'[{}0-9a-z\[\]:,]{0,6}'|github\.event|github\.event\.\*|[0-9]|null|true", 1..5)
    ) {
        let src = format!("{f}({})", args.join(", "));
        if let Ok(e) = parse(&src, &ParseOptions::runtime()) {
            let _ = evaluate(&e, &ctx());
        }
    }
}

fn assert_quick_error(src: &str, stage: Stage) {
    let start = Instant::now();
    let err = parse(src, &ParseOptions::runtime()).expect_err("must be rejected");
    assert_eq!(err.stage, stage, "{}", err.message);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn ten_thousand_open_parens_is_a_depth_error() {
    assert_quick_error(&"(".repeat(10_000), Stage::Parsing);
    assert_quick_error(
        &format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        Stage::Parsing,
    );
    assert_quick_error(&"!".repeat(10_000), Stage::Parsing);
    assert_quick_error(&format!("github{}", ".a".repeat(5_000)), Stage::Parsing);
}

#[test]
fn a_100_kb_expression_is_a_length_error() {
    assert_quick_error(&"(".repeat(100_000), Stage::Lexing);
    assert_quick_error(&"1 == ".repeat(20_000), Stage::Lexing);
    let t = Template::parse(&format!("${{{{ {} }}}}", "a || ".repeat(20_000)));
    assert!(t.is_err());
}

#[test]
fn long_flat_chains_within_the_length_limit_evaluate() {
    // Comparison chains do not nest, so they are only bounded by the length limit.
    let src = format!("1{}", " == 1".repeat(4_000));
    let e = parse(&src, &ParseOptions::runtime()).expect("flat chain parses");
    assert_eq!(evaluate(&e, &Contexts::new()), Ok(Value::Bool(true)));
    let src = format!("1{}", " || 1".repeat(4_000));
    let e = parse(&src, &ParseOptions::runtime()).expect("flat chain parses");
    assert_eq!(evaluate(&e, &Contexts::new()), Ok(Value::Number(1.0)));
}

#[test]
fn deeply_nested_json_is_rejected_not_overflowing() {
    let deep = format!("fromJSON('{}')", "[".repeat(20_000));
    let e = parse(&deep, &ParseOptions::runtime()).expect("parses");
    let err = evaluate(&e, &Contexts::new()).expect_err("invalid JSON");
    assert_eq!(err.stage, Stage::Evaluation);
    let nested = format!("fromJSON('{}{}')", "[".repeat(900), "]".repeat(900));
    let e = parse(&nested, &ParseOptions::runtime()).expect("parses");
    let v = evaluate(&e, &Contexts::new()).expect("within the JSON depth limit");
    drop(v);
}
