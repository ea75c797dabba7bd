//! `gantry queue`: the jobs waiting for an agent, oldest first, each with why it still waits.

use crate::client::{
    Client, ServerArgs, block_on, format_age, now_ms, print_json, render_table, table,
};
use crate::exit::CommandError;
use clap::Args;
use serde::{Deserialize, Serialize};

/// List the queued jobs and why each one waits.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry queue
  gantry queue --json | jq -r '.jobs[].reason'

A job waits when no agent has all its labels, when every agent that has them is busy, or when
another job of its concurrency group is running.")]
pub struct QueueArgs {
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueuedJob {
    pub job_id: String,
    pub run_id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub queued_ms: i64,
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Queue {
    pub jobs: Vec<QueuedJob>,
}

pub fn cmd_queue(args: QueueArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    block_on(async {
        let queue: Queue = client.get("/api/v1/queue").await?;
        if args.json {
            return print_json(&queue);
        }
        print!("{}", render(&queue, now_ms()));
        Ok(())
    })
}

/// The queue as a table.
pub fn render(queue: &Queue, now: i64) -> String {
    if queue.jobs.is_empty() {
        return "No jobs are waiting.\n".to_owned();
    }
    let mut rows = table(&["job", "name", "labels", "queued", "waiting for"]);
    for job in &queue.jobs {
        rows.add_row(vec![
            job.job_id.clone(),
            job.name.clone(),
            job.labels.join(","),
            format_age(job.queued_ms, now),
            job.reason.clone(),
        ]);
    }
    render_table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_reads_as_a_table() {
        let queue = Queue {
            jobs: vec![QueuedJob {
                job_id: "job_1".into(),
                run_id: "run_1".into(),
                name: "train".into(),
                labels: vec!["linux".into(), "gpu".into()],
                queued_ms: 0,
                reason: "no agent has labels linux, gpu".into(),
            }],
        };
        assert_eq!(
            render(&queue, 90_000),
            "\
JOB    NAME   LABELS     QUEUED  WAITING FOR
job_1  train  linux,gpu  1m ago  no agent has labels linux, gpu
"
        );
        assert_eq!(render(&Queue { jobs: vec![] }, 0), "No jobs are waiting.\n");
    }
}
