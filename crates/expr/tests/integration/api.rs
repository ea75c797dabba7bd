//! The public API as other crates use it.

use gantry_expr::{
    Contexts, FunctionSig, Kind, ParseOptions, Stage, Template, Value, eval_str, parse,
};

#[test]
fn named_values_and_function_calls_are_listed_with_spans() {
    let src = "success() && github.ref == 'x' && contains(steps.a.outputs.x, format('{0}', env.Y))";
    let expr = parse(src, &ParseOptions::runtime()).expect("valid expression");
    let names: Vec<(&str, &str)> = expr
        .named_values()
        .map(|(n, s)| (n, &src[s.start..s.end]))
        .collect();
    assert_eq!(
        names,
        [("github", "github"), ("steps", "steps"), ("env", "env")]
    );
    let calls: Vec<(&str, usize, &str)> = expr
        .function_calls()
        .map(|(n, argc, s)| (n, argc, &src[s.start..s.end]))
        .collect();
    assert_eq!(
        calls,
        [
            ("success", 0, "success()"),
            (
                "contains",
                2,
                "contains(steps.a.outputs.x, format('{0}', env.Y))"
            ),
            ("format", 2, "format('{0}', env.Y)"),
        ]
    );
    assert!(expr.calls_status_function());
}

#[test]
fn unknown_named_value_is_a_parse_error_only_when_names_are_restricted() {
    let opts = ParseOptions::new().with_named_values(["github"]);
    let err = parse("GitHub.sha && secrets.x", &opts).expect_err("secrets is not allowed");
    assert_eq!(err.stage, Stage::Parsing);
    assert_eq!(
        err.message,
        "Unrecognized named-value: 'secrets'. Located at position 15 within expression: GitHub.sha && secrets.x"
    );
    assert_eq!(err.span.map(|s| (s.start, s.end)), Some((14, 21)));
    assert!(parse("secrets.x", &ParseOptions::new()).is_ok());
}

#[test]
fn function_arity_is_configurable() {
    let step = ParseOptions::runtime();
    let err = parse("success('build')", &step).expect_err("steps take no arguments");
    assert_eq!(
        err.message,
        "Too many parameters supplied: 'success'. Located at position 1 within expression: success('build')"
    );
    let mut job = ParseOptions::new();
    job.functions.extend(FunctionSig::job_status_functions());
    assert!(parse("success('build', 'test')", &job).is_ok());
    let err = parse("hashFiles('x')", &job).expect_err("not allowed at job level");
    assert_eq!(
        err.message,
        "Unrecognized function: 'hashFiles'. Located at position 1 within expression: hashFiles('x')"
    );
}

#[test]
fn logical_operators_return_operand_values() {
    let mut ctx = Contexts::new();
    ctx.insert("env", Value::from(serde_json::json!({"A": "", "B": "b"})));
    assert_eq!(eval_str("env.a || env.b", &ctx), Ok(Value::from("b")));
    assert_eq!(eval_str("env.b && env.a", &ctx), Ok(Value::from("")));
    assert_eq!(eval_str("env.missing && 1", &ctx), Ok(Value::Null));
}

#[test]
fn same_context_object_equals_itself_but_not_a_copy() {
    let mut ctx = Contexts::new();
    ctx.insert("a", Value::from(serde_json::json!({"x": [1]})));
    assert_eq!(eval_str("a == a", &ctx), Ok(Value::Bool(true)));
    assert_eq!(eval_str("a.x == a.x", &ctx), Ok(Value::Bool(true)));
    assert_eq!(
        eval_str("a == fromJSON(toJSON(a))", &ctx),
        Ok(Value::Bool(false))
    );
    assert_eq!(eval_str("contains(a.*, a.x)", &ctx), Ok(Value::Bool(true)));
}

#[test]
fn template_single_expression_keeps_the_value() {
    let mut ctx = Contexts::new();
    ctx.insert("matrix", Value::from(serde_json::json!({"node": [18, 20]})));
    let t = Template::parse("${{ matrix.node }}").expect("valid");
    let v = t.evaluate(&ctx).expect("evaluates");
    assert_eq!(v.kind(), Kind::Array);
    let t = Template::parse("node ${{ matrix.node[1] }} on ${{ matrix.os }}.").expect("valid");
    assert_eq!(t.evaluate_to_string(&ctx).as_deref(), Ok("node 20 on ."));
}

#[test]
fn custom_functions_can_be_supplied() {
    let mut ctx = Contexts::new();
    ctx.define_function("success", |args| Ok(Value::Bool(args.len() == 2)));
    let mut opts = ParseOptions::new();
    opts.functions.extend(FunctionSig::job_status_functions());
    let expr = parse("success('a', 'b')", &opts).expect("valid");
    assert_eq!(gantry_expr::evaluate(&expr, &ctx), Ok(Value::Bool(true)));
}
