//! `gantry validate`: checks workflow files and reports every mistake in one pass.

use crate::exit::CommandError;
use crate::repo::{Repo, print_diagnostics};
use crate::style;
use clap::{Args, ValueEnum};
use owo_colors::OwoColorize;
use std::io::Write;
use std::path::PathBuf;

/// Check workflow files: every mistake in one pass, each with its place and a hint.
///
/// Without paths, checks the repository's `.github/workflows` and `.gantry/workflows`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry validate
  gantry validate .github/workflows/ci.yml
  gantry validate --format json | jq '.[] | select(.severity == \"error\")'
  gantry validate --strict          # warnings fail too

Exit status: 0 when clean, 2 when a file has errors (or warnings with --strict).")]
pub struct ValidateArgs {
    /// Workflow files to check (default: the repository's workflow folders).
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fail on warnings too.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn cmd_validate(args: ValidateArgs) -> Result<(), CommandError> {
    let repo = Repo::current()?;
    let loaded = repo.load_workflows(&args.paths)?;
    let (errors, warnings) = match args.format {
        Format::Json => {
            let mut all = Vec::new();
            let (mut errors, mut warnings) = (0, 0);
            for workflow in &loaded {
                let shown = repo.display_path(&workflow.path);
                for diagnostic in &workflow.parsed.diagnostics {
                    if diagnostic.is_error() {
                        errors += 1;
                    } else {
                        warnings += 1;
                    }
                    all.push(diagnostic.to_json(&shown));
                }
            }
            let text =
                serde_json::to_string_pretty(&all).map_err(|e| CommandError::Internal(e.into()))?;
            let _ = writeln!(anstream::stdout(), "{text}");
            (errors, warnings)
        }
        Format::Text => {
            let count = print_diagnostics(&repo, &loaded, style::stderr_color());
            let files = loaded.len();
            let mut stderr = anstream::stderr();
            let summary = format!(
                "{files} file{}: {} error{}, {} warning{}",
                plural(files),
                count.errors,
                plural(count.errors),
                count.warnings,
                plural(count.warnings)
            );
            let _ = if count.errors > 0 {
                writeln!(stderr, "{}", summary.red().bold())
            } else if count.warnings > 0 {
                writeln!(stderr, "{}", summary.yellow())
            } else {
                writeln!(stderr, "{} {summary}", "✓".green())
            };
            (count.errors, count.warnings)
        }
    };
    if errors > 0 || (args.strict && warnings > 0) {
        Err(CommandError::INVALID)
    } else {
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
