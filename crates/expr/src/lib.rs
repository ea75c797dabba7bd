//! The `${{ }}` expression language of GitHub Actions workflows, evaluated as GitHub
//! evaluates it.
//!
//! This crate owns the language: the lexer, a Pratt parser with GitHub's precedence,
//! nesting limit (50) and length limit (21,000), the values and GitHub's loose coercions
//! (case-insensitive strings, JavaScript number formatting, `null`/NaN rules, object
//! filters `a.*.b`), the functions (`contains`, `startsWith`, `endsWith`, `format`,
//! `join`, `toJSON`, `fromJSON`, `case`, the status functions and `hashFiles`), and
//! templates (`text ${{ expr }} text`). Error messages use GitHub's wording.
//!
//! It must not know about YAML, workflows or jobs (callers hand it strings and
//! contexts), and it does no I/O except reading files for `hashFiles()`.
//!
//! ```
//! use gantry_expr::{Contexts, Template, Value, eval_str};
//!
//! let mut ctx = Contexts::new();
//! ctx.insert("github", Value::from(serde_json::json!({"ref": "refs/heads/main"})));
//! let v = eval_str("github.REF == 'REFS/heads/main' && 'yes'", &ctx)?;
//! assert_eq!(v, Value::from("yes"));
//!
//! let t = Template::parse("ref=${{ github.ref }}")?;
//! assert_eq!(t.evaluate_to_string(&ctx)?, "ref=refs/heads/main");
//! # Ok::<(), gantry_expr::Error>(())
//! ```

#![warn(missing_docs)]

mod compare;
mod error;
mod evaluator;
mod expr;
mod function;
mod hash_files;
mod json;
mod lexer;
mod number;
mod parser;
mod serde_impl;
mod template;
mod value;

pub use error::{Error, ErrorKind, Span, Stage};
pub use evaluator::{Contexts, CustomFunction, JobStatus, evaluate, evaluate_condition};
pub use expr::{CompareOp, Expr, LogicalOp, Node, NodeKind, Nodes};
pub use hash_files::hash_files;
pub use json::MAX_JSON_DEPTH;
pub use lexer::MAX_LENGTH;
pub use parser::{BUILTIN_FUNCTIONS, FunctionSig, MAX_DEPTH, ParseOptions, parse};
pub use template::{Part, Template};
pub use value::{Kind, Object, Value};

/// Parses `src` with [`ParseOptions::runtime`] and evaluates it.
pub fn eval_str(src: &str, ctx: &Contexts) -> Result<Value, Error> {
    evaluate(&parse(src, &ParseOptions::runtime())?, ctx)
}

/// Formats a number as templates and `format()` print it (`1.5`, `1e+21`, `0.3` for
/// `0.1 + 0.2`-like noise: at most 15 decimals).
pub fn number_to_string(n: f64) -> String {
    number::coerce_to_string(n)
}
