//! `gantry rerun`: start a completed run again, whole or only its failed jobs. Needs a write
//! token.

use super::runs::RunDetail;
use crate::client::{Client, ServerArgs, block_on, print_json};
use crate::exit::CommandError;
use anyhow::anyhow;
use clap::Args;

/// Run a completed run again, as a new attempt.
///
/// The new run has the same commit, event and workflow files as the old one and the next
/// attempt number. With --failed, the jobs that succeeded keep their results and outputs and
/// only the others (and the jobs that need them) run again.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry rerun run_3f2a...            # everything again
  gantry rerun run_3f2a... --failed   # only what failed or was cancelled
  gantry rerun run_3f2a... --failed && gantry logs -f <new run id>")]
pub struct RerunArgs {
    /// The run to start again.
    #[arg(value_name = "RUN-ID")]
    pub run: String,
    /// Only the jobs that did not succeed, and those that need them.
    #[arg(long)]
    pub failed: bool,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn cmd_rerun(args: RerunArgs) -> Result<(), CommandError> {
    let run = args.run.trim().to_owned();
    if !run.starts_with("run_") {
        return Err(CommandError::Usage(anyhow!(
            "{run:?} is not a run id (run ids start with run_)"
        )));
    }
    let client = Client::new(&args.server)?;
    block_on(async {
        let detail: RunDetail = client
            .post(
                &format!("/api/v1/runs/{run}/rerun"),
                &serde_json::json!({ "failed_only": args.failed }),
            )
            .await?;
        if args.json {
            return print_json(&detail);
        }
        let new = &detail.run;
        println!(
            "Started {} #{} attempt {} ({}).",
            new.repository, new.number, new.attempt, new.id
        );
        let names: Vec<&str> = detail.jobs.iter().map(|j| j.name.as_str()).collect();
        if !names.is_empty() {
            println!("Running now: {}", names.join(", "));
        }
        let kept = detail
            .notes
            .iter()
            .filter(|n| n.conclusion == "success")
            .count();
        if kept > 0 {
            println!(
                "Kept from attempt {}: {kept} job(s).",
                new.attempt.saturating_sub(1)
            );
        }
        println!("Follow it: gantry logs -f {}", new.id);
        Ok(())
    })
}
