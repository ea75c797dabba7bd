//! Throughput of the expression engine over the whole official oracle set
//! (testdata/oracles/expressions.json). Prints figures; asserts nothing.
//!
//! Run with `cargo bench -p gantry-expr` (or `bench/expr.sh`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use gantry_expr::{
    Contexts, Expr, FunctionSig, JobStatus, ParseOptions, Template, Value, evaluate, parse,
};

struct Case {
    expr: String,
    opts: ParseOptions,
    ctx: Contexts,
}

fn load() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/oracles/expressions.json"
    );
    let text = std::fs::read_to_string(path).expect("oracle file is readable");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("oracle file is JSON");
    cases
        .iter()
        .map(|c| {
            let context = c["context"].as_object().cloned().unwrap_or_default();
            let mut opts = ParseOptions::new().with_named_values(context.keys().cloned());
            let mut ctx = Contexts::new();
            for (k, v) in context {
                ctx.insert(k, Value::from(v));
            }
            if let Some(status) = c["job_status"].as_str() {
                opts.functions.extend(FunctionSig::status_functions());
                ctx.status = JobStatus::from_name(status).expect("known status");
            }
            Case {
                expr: c["expr"].as_str().unwrap_or_default().to_owned(),
                opts,
                ctx,
            }
        })
        .collect()
}

/// Runs `round` until at least `min` has elapsed; returns (rounds, elapsed).
fn time(min: Duration, mut round: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < min {
        round();
        rounds += 1;
    }
    (rounds, start.elapsed())
}

fn per_second(ops: u64, elapsed: Duration) -> String {
    let rate = ops as f64 / elapsed.as_secs_f64();
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}

fn main() {
    let cases = load();
    let min = Duration::from_secs(2);
    let n = cases.len() as u64;
    let bytes: usize = cases.iter().map(|c| c.expr.len()).sum();

    // Parsing every case (errors included).
    let (rounds, elapsed) = time(min, || {
        for c in &cases {
            let _ = black_box(parse(black_box(&c.expr), &c.opts));
        }
    });
    let parses = rounds * n;
    println!(
        "parse:     {} expressions/s ({} cases x {rounds} rounds in {elapsed:.2?}, {:.0} MB/s)",
        per_second(parses, elapsed),
        n,
        (bytes as u64 * rounds) as f64 / elapsed.as_secs_f64() / 1e6
    );

    // Evaluating the cases that parse.
    let parsed: Vec<(Expr, &Contexts)> = cases
        .iter()
        .filter_map(|c| parse(&c.expr, &c.opts).ok().map(|e| (e, &c.ctx)))
        .collect();
    let m = parsed.len() as u64;
    let (rounds, elapsed) = time(min, || {
        for (e, ctx) in &parsed {
            let _ = black_box(evaluate(black_box(e), ctx));
        }
    });
    println!(
        "evaluate:  {} evaluations/s ({m} parsed cases x {rounds} rounds in {elapsed:.2?})",
        per_second(rounds * m, elapsed)
    );

    // Parse + evaluate, as `gantry expr` does once per expression.
    let (rounds, elapsed) = time(min, || {
        for c in &cases {
            if let Ok(e) = parse(&c.expr, &c.opts) {
                let _ = black_box(evaluate(&e, &c.ctx));
            }
        }
    });
    println!(
        "both:      {} parse+evaluate/s ({n} cases x {rounds} rounds in {elapsed:.2?})",
        per_second(rounds * n, elapsed)
    );

    // A typical step template.
    let mut ctx = Contexts::new();
    ctx.insert(
        "github",
        Value::from(serde_json::json!({"ref": "refs/heads/main", "sha": "0123456789abcdef", "event_name": "push",
            "event": {"head_commit": {"message": "Fix the build"}}})),
    );
    ctx.insert(
        "matrix",
        Value::from(serde_json::json!({"os": "ubuntu-latest", "node": 20})),
    );
    let template = Template::parse(
        "echo '${{ github.event.head_commit.message }}' on ${{ matrix.os }} node ${{ matrix.node }} \
         (${{ github.event_name == 'push' && startsWith(github.ref, 'refs/heads/') }})",
    )
    .expect("valid template");
    let (rounds, elapsed) = time(min, || {
        let _ = black_box(template.evaluate_to_string(black_box(&ctx)));
    });
    println!(
        "template:  {} renders/s (4 expressions each, {rounds} renders in {elapsed:.2?})",
        per_second(rounds, elapsed)
    );
}
