//! `gantry expr`: evaluates a `${{ }}` expression exactly as a run would.

use crate::exit::CommandError;
use anyhow::Context as _;
use clap::Args;
use gantry_expr::{Contexts, JobStatus, ParseOptions, Value};
use owo_colors::OwoColorize;
use std::io::Write;
use std::path::PathBuf;

/// Evaluate a `${{ }}` expression as a workflow run would.
///
/// The expression may be given with or without `${{ }}`. Contexts come from a JSON file whose
/// top-level keys are the context names (github, env, matrix, steps, needs...).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry expr \"contains(github.ref, 'main') && 'yes' || 'no'\" --context ctx.json
  gantry expr 'format(\"{0}-{1}\", matrix.os, matrix.node)' --context ctx.json --json
  gantry expr \"fromJSON('[1,2,3]')[1]\"
  gantry expr \"hashFiles('**/Cargo.lock')\" --workspace .
  gantry expr 'failure()' --status failure

With --json the result is {\"kind\":...,\"value\":...}, or {\"error\":...,\"stage\":...}.")]
pub struct ExprArgs {
    /// The expression, e.g. `github.event_name == 'push'` or `${{ matrix.os }}`.
    pub expression: String,
    /// JSON file of contexts: {"github": {...}, "env": {...}, ...}.
    #[arg(long, value_name = "FILE")]
    pub context: Option<PathBuf>,
    /// Job status for success(), failure(), cancelled().
    #[arg(long, value_name = "STATUS", default_value = "success", value_parser = ["success", "failure", "cancelled"])]
    pub status: String,
    /// Directory hashFiles() searches (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_expr(args: ExprArgs) -> Result<(), CommandError> {
    let mut ctx = Contexts::new();
    if let Some(path) = &args.context {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the context file {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let serde_json::Value::Object(map) = json else {
            return Err(CommandError::Usage(anyhow::anyhow!(
                "{} must hold a JSON object whose keys are context names",
                path.display()
            )));
        };
        for (name, value) in map {
            ctx.insert(name, Value::from(value));
        }
    }
    ctx.status = JobStatus::from_name(&args.status).unwrap_or_default();
    ctx.workspace = Some(match &args.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("could not read the current directory")?,
    });

    let source = strip_template(&args.expression);
    let result = gantry_expr::parse(source, &ParseOptions::runtime())
        .and_then(|expr| gantry_expr::evaluate(&expr, &ctx));
    let mut stdout = anstream::stdout();
    match result {
        Ok(value) => {
            if args.json {
                let out =
                    serde_json::json!({ "kind": value.kind().as_str(), "value": value.to_json() });
                let _ = writeln!(stdout, "{out}");
            } else {
                let shown = match &value {
                    Value::String(s) => s.clone(),
                    Value::Array(_) | Value::Object(_) => value.to_pretty_json(),
                    other => other.to_coerced_string(),
                };
                let _ = writeln!(stdout, "{shown}");
                let _ = writeln!(
                    anstream::stderr(),
                    "{}",
                    format!("({})", value.kind().as_str()).dimmed()
                );
            }
            Ok(())
        }
        Err(error) => {
            if args.json {
                let out =
                    serde_json::json!({ "error": error.message, "stage": error.stage.as_str() });
                let _ = writeln!(stdout, "{out}");
            } else {
                let mut stderr = anstream::stderr();
                let _ = writeln!(stderr, "{} {}", "error:".red().bold(), error.message);
                if let Some(span) = error.span {
                    let _ = writeln!(stderr, "  {source}");
                    let pad = source[..span.start.min(source.len())].chars().count();
                    let width = source
                        .get(span.start..span.end.max(span.start + 1).min(source.len()))
                        .map(|s| s.chars().count())
                        .unwrap_or(1)
                        .max(1);
                    let _ = writeln!(
                        stderr,
                        "  {}{}",
                        " ".repeat(pad),
                        "^".repeat(width).red().bold()
                    );
                }
            }
            Err(CommandError::INVALID)
        }
    }
}

/// `${{ x }}` -> `x`; anything else unchanged.
fn strip_template(text: &str) -> &str {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map(str::trim)
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::strip_template;

    #[test]
    fn template_markers_are_optional() {
        assert_eq!(strip_template("${{ github.ref }}"), "github.ref");
        assert_eq!(strip_template("github.ref"), "github.ref");
        assert_eq!(strip_template("  ${{a}}  "), "a");
    }
}
