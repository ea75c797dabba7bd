//! `gantry cancel`: cancel a run (every job of it) or one job. Needs a write token.

use crate::client::{Client, ServerArgs, block_on};
use crate::exit::CommandError;
use anyhow::anyhow;
use clap::Args;
use serde::Deserialize;

/// Cancel a run or a job.
///
/// Jobs that have not started are cancelled at once; running jobs are stopped by their agents
/// (steps with `if: always()` or `cancelled()` still run), and the run ends once they have.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry cancel run_3f2a...      # the whole run
  gantry cancel job_8c1e...      # one job; the run goes on as its workflow says

Exit status: 0 when the cancel was accepted, 1 when the server refused it (already ended, no
such id, token without the write role), 2 for usage errors.")]
pub struct CancelArgs {
    /// A run id (run_...) or a job id (job_...).
    #[arg(value_name = "RUN-ID|JOB-ID")]
    pub id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Deserialize)]
struct CancelAnswer {
    cancelled: Vec<String>,
    stopping: Vec<String>,
}

pub fn cmd_cancel(args: CancelArgs) -> Result<(), CommandError> {
    let id = args.id.trim().to_owned();
    let kind = if id.starts_with("run_") {
        "runs"
    } else if id.starts_with("job_") {
        "jobs"
    } else {
        return Err(CommandError::Usage(anyhow!(
            "{id:?} is neither a run id (run_...) nor a job id (job_...)"
        )));
    };
    let client = Client::new(&args.server)?;
    block_on(async {
        let answer: CancelAnswer = client
            .post(
                &format!("/api/v1/{kind}/{id}/cancel"),
                &serde_json::json!({}),
            )
            .await?;
        println!(
            "{}",
            describe(&id, answer.cancelled.len(), answer.stopping.len())
        );
        Ok(())
    })
}

/// What a cancel did, in words.
fn describe(id: &str, cancelled: usize, stopping: usize) -> String {
    let jobs = |n: usize| {
        if n == 1 {
            "1 job".to_owned()
        } else {
            format!("{n} jobs")
        }
    };
    match (cancelled, stopping) {
        (0, 0) => format!("Cancel requested for {id}."),
        (c, 0) => format!("Cancelled {id}: {} cancelled before starting.", jobs(c)),
        (0, s) => format!("Cancelling {id}: {} stopping on their agents.", jobs(s)),
        (c, s) => format!(
            "Cancelling {id}: {} cancelled before starting, {} stopping on their agents.",
            jobs(c),
            jobs(s)
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cancels_are_described() {
        assert_eq!(
            super::describe("run_1", 2, 1),
            "Cancelling run_1: 2 jobs cancelled before starting, 1 job stopping on their agents."
        );
        assert_eq!(
            super::describe("job_1", 1, 0),
            "Cancelled job_1: 1 job cancelled before starting."
        );
    }
}
