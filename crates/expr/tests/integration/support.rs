//! Loading oracle cases and comparing results the way the oracle README prescribes.

use std::path::PathBuf;

use gantry_expr::{
    Contexts, Error, FunctionSig, JobStatus, Kind, ParseOptions, Value, evaluate, parse,
};
use serde_json::Value as Json;

/// Path of a file under the repository's `testdata/oracles`.
pub fn oracle_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/oracles"
    ))
    .join(name)
}

/// Reads an oracle JSON file.
pub fn load(name: &str) -> Json {
    let path = oracle_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One expression case: what to evaluate and what is expected.
pub struct Case {
    pub id: String,
    pub expr: String,
    pub context: serde_json::Map<String, Json>,
    pub kind: String,
    pub expected: Json,
    pub job_status: Option<String>,
}

impl Case {
    pub fn from_json(c: &Json) -> Case {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        Case {
            id: s("id"),
            expr: s("expr"),
            context: c["context"].as_object().cloned().unwrap_or_default(),
            kind: s("kind"),
            expected: c["expected"].clone(),
            job_status: c["job_status"].as_str().map(str::to_owned),
        }
    }

    /// Parses with only the case's contexts as named values (plus the status functions
    /// when the case has a job status), then evaluates.
    pub fn run(&self) -> Result<Value, Error> {
        let mut opts = ParseOptions::new().with_named_values(self.context.keys().cloned());
        let mut ctx = Contexts::new();
        for (k, v) in &self.context {
            ctx.insert(k.clone(), Value::from(v.clone()));
        }
        if let Some(status) = &self.job_status {
            opts.functions.extend(FunctionSig::status_functions());
            ctx.status = JobStatus::from_name(status).expect("known job status");
        }
        let expr = parse(&self.expr, &opts)?;
        evaluate(&expr, &ctx)
    }

    /// `None` when the result matches; otherwise what differs.
    pub fn check(&self) -> Option<String> {
        let got = self.run();
        match (&got, self.kind.as_str()) {
            (Err(e), "Error") => {
                let stage = self.expected["stage"].as_str().unwrap_or_default();
                (e.stage.as_str() != stage).then(|| {
                    format!(
                        "expected a {stage} error, got a {} error: {}",
                        e.stage, e.message
                    )
                })
            }
            (Err(e), kind) => Some(format!(
                "expected {kind} {}, got error: {}",
                self.expected, e.message
            )),
            (Ok(v), "Error") => Some(format!(
                "expected error {}, got {} {}",
                self.expected,
                v.kind(),
                v.to_json()
            )),
            (Ok(v), kind) => {
                if v.kind().as_str() != kind {
                    return Some(format!(
                        "expected {kind} {}, got {} {}",
                        self.expected,
                        v.kind(),
                        show(v)
                    ));
                }
                (!same(v, &self.expected))
                    .then(|| format!("expected {}, got {}", self.expected, show(v)))
            }
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n:?}"),
        Value::String(s) => format!("{s:?}"),
        _ => v.to_json().to_string(),
    }
}

fn number_of(j: &Json) -> Option<f64> {
    match j {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            "-0" => Some(-0.0),
            _ => None,
        },
        _ => None,
    }
}

/// Compares a result with an expected value (README encoding; key order ignored).
pub fn same(v: &Value, expected: &Json) -> bool {
    match (v, expected) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), e) => match number_of(e) {
            Some(b) if a.is_nan() => b.is_nan(),
            Some(b) => *a == b,
            None => false,
        },
        (Value::String(a), Json::String(b)) => a == b,
        (Value::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(k, y)| a.iter().any(|(ak, x)| ak == k && same(x, y)))
        }
        _ => false,
    }
}

/// Kind of an expected value given as text (`"Number"`...).
#[allow(dead_code)]
pub fn kind_name(k: Kind) -> &'static str {
    k.as_str()
}

/// Runs cases, returns (passed, failures as (id, reason)).
pub fn run_all(cases: &[Case]) -> (usize, Vec<(String, String)>) {
    let mut failures = Vec::new();
    for case in cases {
        if let Some(why) = case.check() {
            failures.push((case.id.clone(), why));
        }
    }
    (cases.len() - failures.len(), failures)
}
