//! `gantry logs`: a job's log, or every job's log of a run; `-f` follows them live over the
//! server's event stream, resuming from the last byte received when the connection drops.

use super::runs::{JobSummary, RunDetail};
use crate::client::{Client, ServerArgs, block_on};
use crate::exit::CommandError;
use anyhow::{Context as _, anyhow};
use clap::Args;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use std::io::Write as _;
use std::time::Duration;

/// Print a job's log, or the logs of a run's jobs.
///
/// With a job id, prints that job's log. With a run id, prints each job's log in the order the
/// jobs were created, each under a header line. With -f, keeps printing as the log grows
/// until the job (or every job of the run) has ended; a dropped connection is resumed from the
/// last byte received.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry logs job_8c1e...                 # the log so far
  gantry logs -f job_8c1e...              # follow it until the job ends
  gantry logs -f run_3f2a...              # follow every job of a run, one after the other
  gantry logs run_3f2a... > run.log

Line breaks arrive as \\n when following (\\r\\n and a lone \\r too); without -f the bytes are
exactly as stored.")]
pub struct LogsArgs {
    /// A job id (job_...) or a run id (run_...).
    #[arg(value_name = "JOB-ID|RUN-ID")]
    pub id: String,
    /// Follow the log as it grows, until the job ends.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn cmd_logs(args: LogsArgs) -> Result<(), CommandError> {
    let target = Target::parse(&args.id).map_err(CommandError::Usage)?;
    let client = Client::new(&args.server)?;
    block_on(async {
        match target {
            Target::Job(id) => {
                if args.follow {
                    follow_job(&client, &id).await
                } else {
                    print_job(&client, &id).await
                }
            }
            Target::Run(id) => logs_of_run(&client, &id, args.follow).await,
        }
    })
}

/// What `gantry logs` was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Job(String),
    Run(String),
}

impl Target {
    pub fn parse(id: &str) -> anyhow::Result<Target> {
        let id = id.trim();
        if id.starts_with("job_") {
            Ok(Target::Job(id.to_owned()))
        } else if id.starts_with("run_") {
            Ok(Target::Run(id.to_owned()))
        } else {
            Err(anyhow!(
                "{id:?} is neither a job id (job_...) nor a run id (run_...); \
                 `gantry runs` lists runs, `gantry runs RUN-ID` their jobs"
            ))
        }
    }
}

/// Prints a job's stored log as it is now.
async fn print_job(client: &Client, id: &str) -> anyhow::Result<()> {
    let response = client
        .send(client.request(Method::GET, &format!("/api/v1/jobs/{id}/logs")))
        .await?;
    let mut stdout = std::io::stdout().lock();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| anyhow!("the log download was cut off: {e}"))?;
        stdout
            .write_all(&chunk)
            .context("could not write to standard output")?;
    }
    stdout
        .flush()
        .context("could not write to standard output")?;
    Ok(())
}

/// The jobs to print for a run: every attempt, in creation order.
async fn run_jobs(client: &Client, id: &str) -> anyhow::Result<RunDetail> {
    client.get(&format!("/api/v1/runs/{id}")).await
}

fn header(job: &JobSummary) -> String {
    let attempt = if job.attempt > 1 {
        format!(", attempt {}", job.attempt)
    } else {
        String::new()
    };
    format!("==> {} ({}{attempt}) <==", job.name, job.id)
}

async fn logs_of_run(client: &Client, id: &str, follow: bool) -> anyhow::Result<()> {
    let mut printed: Vec<String> = Vec::new();
    loop {
        let detail = run_jobs(client, id).await?;
        let next = detail.jobs.iter().find(|j| !printed.contains(&j.id));
        match next {
            Some(job) => {
                if !printed.is_empty() {
                    println!();
                }
                println!("{}", header(job));
                if follow {
                    follow_job(client, &job.id).await?;
                } else {
                    print_job(client, &job.id).await?;
                }
                printed.push(job.id.clone());
            }
            None if !follow || detail.run.status == "completed" => {
                if detail.jobs.is_empty() {
                    eprintln!("Run {id} has no jobs with logs.");
                }
                return Ok(());
            }
            // Jobs still to be created (they wait for others): look again shortly.
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Splits a server-sent event stream into events as bytes arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
    pending: Vec<u8>,
}

impl SseParser {
    /// Takes more bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        // Keep an incomplete UTF-8 sequence for the next push.
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        self.buffer.push_str(&text.replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            if let Some(event) = parse_block(&block) {
                events.push(event);
            }
        }
        events
    }
}

/// One event block (lines up to a blank line); `None` for a comment-only block.
fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    let mut any = false;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        any = true;
        match field {
            "event" => event.event = value.to_owned(),
            "id" => event.id = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if !any {
        return None;
    }
    if event.event.is_empty() {
        event.event = "message".to_owned();
    }
    event.data = data.join("\n");
    Some(event)
}

/// Follows a job's live log to its end, reconnecting from the last offset after a drop.
async fn follow_job(client: &Client, id: &str) -> anyhow::Result<()> {
    let mut offset: u64 = 0;
    let mut failures: u32 = 0;
    loop {
        let before = offset;
        let why = match stream_once(client, id, &mut offset).await {
            Ok(true) => return Ok(()),
            // The stream ended without `end`: the connection was dropped.
            Ok(false) => "the connection was closed".to_owned(),
            Err(StreamError::Fatal(e)) => return Err(e),
            Err(StreamError::Retry(e)) => e.to_string(),
        };
        if offset > before {
            failures = 0;
        }
        failures += 1;
        if failures == 1 || failures.is_multiple_of(10) {
            eprintln!("gantry: lost the log stream ({why}); resuming at byte {offset}");
        }
        let wait = Duration::from_millis(500u64.saturating_mul(1 << failures.min(5)).min(10_000));
        tokio::time::sleep(wait).await;
    }
}

enum StreamError {
    /// Worth connecting again (network, 5xx).
    Retry(anyhow::Error),
    /// Connecting again would give the same answer (401, 404...).
    Fatal(anyhow::Error),
}

/// Reads the live stream from `offset` until it ends; true when the job's log is complete.
async fn stream_once(client: &Client, id: &str, offset: &mut u64) -> Result<bool, StreamError> {
    let request = client
        .request(Method::GET, &format!("/api/v1/jobs/{id}/logs/live"))
        .header("accept", "text/event-stream")
        .header("last-event-id", offset.to_string());
    let response = request
        .send()
        .await
        .map_err(|e| StreamError::Retry(client.network_error(e)))?;
    let status = response.status();
    if !status.is_success() {
        let error = client.refusal(response).await;
        return Err(
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                StreamError::Retry(error)
            } else {
                StreamError::Fatal(error)
            },
        );
    }
    let mut parser = SseParser::default();
    let mut body = response.bytes_stream();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StreamError::Retry(anyhow!(e)))?;
        for event in parser.push(&chunk) {
            match event.event.as_str() {
                "log" => {
                    stdout
                        .write_all(event.data.as_bytes())
                        .and_then(|()| stdout.flush())
                        .map_err(|e| {
                            StreamError::Fatal(anyhow!("could not write to standard output: {e}"))
                        })?;
                    if let Some(next) = event.id.as_deref().and_then(|i| i.parse().ok()) {
                        *offset = next;
                    }
                }
                "end" => return Ok(true),
                _ => {}
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_say_what_to_print() {
        assert_eq!(
            Target::parse("job_1").ok(),
            Some(Target::Job("job_1".into()))
        );
        assert_eq!(
            Target::parse(" run_2 ").ok(),
            Some(Target::Run("run_2".into()))
        );
        assert!(Target::parse("42").is_err());
    }

    #[test]
    fn events_are_parsed_across_arbitrary_chunk_boundaries() {
        let stream = "event: log\nid: 6\ndata: hello\ndata: \n\n: keep-alive\n\n\
                      event: log\nid: 9\ndata: é!\n\nevent: end\nid: 9\ndata: {}\n\n";
        let bytes = stream.as_bytes();
        let expected = vec![
            SseEvent {
                event: "log".into(),
                id: Some("6".into()),
                data: "hello\n".into(),
            },
            SseEvent {
                event: "log".into(),
                id: Some("9".into()),
                data: "é!".into(),
            },
            SseEvent {
                event: "end".into(),
                id: Some("9".into()),
                data: "{}".into(),
            },
        ];
        for split in [1, 2, 3, 7, 50, bytes.len()] {
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            for chunk in bytes.chunks(split) {
                events.extend(parser.push(chunk));
            }
            assert_eq!(events, expected, "chunks of {split}");
        }
    }
}
