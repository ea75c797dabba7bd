//! `gantry runs`: the runs of a Gantry server, newest first, filtered; or one run with its
//! jobs and the jobs that never ran.

use crate::client::{
    Client, ServerArgs, block_on, format_age, format_duration, now_ms, print_json, render_table,
    short_ref, state_word, table,
};
use crate::exit::CommandError;
use anyhow::anyhow;
use clap::Args;
use serde::{Deserialize, Serialize};

/// List the server's runs, or show one run's jobs.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry runs                                   # the 20 newest runs
  gantry runs --repo acme/widgets --branch main --status completed
  gantry runs --limit 50 --before 1767225600000.run_3f...   # the next page
  gantry runs run_3f2a...                       # one run: its jobs, and why others never ran
  gantry runs --json | jq '.runs[].id'")]
pub struct RunsArgs {
    /// Show this run (with its jobs) instead of a list.
    #[arg(value_name = "RUN-ID")]
    pub run: Option<String>,
    /// Only runs of this repository (`owner/repo` or its id).
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// Only runs of this branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// Only runs in this state.
    #[arg(long, value_parser = ["queued", "in_progress", "completed"])]
    pub status: Option<String>,
    /// Only runs started by this event (push, pull_request, workflow_dispatch, schedule...).
    #[arg(long)]
    pub event: Option<String>,
    /// How many runs to list (at most 500).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Continue a list after this cursor (printed at the end of a full page).
    #[arg(long, value_name = "CURSOR")]
    pub before: Option<String>,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A run as lists show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub repository: String,
    pub number: i64,
    pub attempt: u32,
    pub workflow_name: String,
    pub title: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub cancel_requested: bool,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
    pub next: Option<String>,
}

/// A job as the run answer shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: String,
    pub key: String,
    pub leg: u32,
    pub attempt: u32,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub reason: Option<serde_json::Value>,
    pub agent_name: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note {
    pub key: String,
    pub name: String,
    pub conclusion: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub jobs: Vec<JobSummary>,
    pub notes: Vec<Note>,
}

pub fn cmd_runs(args: RunsArgs) -> Result<(), CommandError> {
    if let Some(run) = &args.run
        && !run.starts_with("run_")
    {
        return Err(CommandError::Usage(anyhow!(
            "{run:?} is not a run id (run ids start with run_)"
        )));
    }
    let client = Client::new(&args.server)?;
    block_on(async {
        match &args.run {
            Some(id) => {
                let detail: RunDetail = client.get(&format!("/api/v1/runs/{id}")).await?;
                if args.json {
                    return print_json(&detail);
                }
                print!("{}", render_run(&detail, now_ms()));
            }
            None => {
                let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
                let filters = [
                    ("repository", &args.repo),
                    ("branch", &args.branch),
                    ("status", &args.status),
                    ("event", &args.event),
                    ("before", &args.before),
                ];
                for (name, value) in filters {
                    if let Some(value) = value {
                        query.push((name, value.clone()));
                    }
                }
                let list: RunList = client.get_query("/api/v1/runs", &query).await?;
                if args.json {
                    return print_json(&list);
                }
                print!("{}", render_list(&list, now_ms()));
                if let Some(next) = &list.next {
                    eprintln!("More runs: add --before {next}");
                }
            }
        }
        Ok(())
    })
}

/// How long a run or job took (or has taken so far).
fn elapsed(started: Option<i64>, finished: Option<i64>, now: i64) -> String {
    match (started, finished) {
        (Some(start), Some(end)) => format_duration(end - start),
        (Some(start), None) => format!("{} so far", format_duration(now - start)),
        _ => String::new(),
    }
}

/// The run list as a table.
pub fn render_list(list: &RunList, now: i64) -> String {
    if list.runs.is_empty() {
        return "No runs.\n".to_owned();
    }
    let mut rows = table(&[
        "run",
        "repository",
        "#",
        "workflow",
        "ref",
        "event",
        "state",
        "created",
        "took",
    ]);
    for run in &list.runs {
        let mut state = state_word(&run.status, run.conclusion.as_deref());
        if run.cancel_requested && run.status != "completed" {
            state.push_str(" (cancelling)");
        }
        let number = if run.attempt > 1 {
            format!("{} (attempt {})", run.number, run.attempt)
        } else {
            run.number.to_string()
        };
        rows.add_row(vec![
            run.id.clone(),
            run.repository.clone(),
            number,
            run.workflow_name.clone(),
            short_ref(&run.git_ref),
            run.event.clone(),
            state,
            format_age(run.created_ms, now),
            elapsed(run.started_ms, run.finished_ms, now),
        ]);
    }
    render_table(&rows)
}

/// One run: a header, its jobs, and the jobs that never ran.
pub fn render_run(detail: &RunDetail, now: i64) -> String {
    let run = &detail.run;
    let mut out = format!(
        "{} #{} {} ({})\n",
        run.repository, run.number, run.workflow_name, run.id
    );
    if !run.title.is_empty() {
        out.push_str(&format!("  {}\n", run.title));
    }
    let short_sha: String = run.sha.chars().take(10).collect();
    out.push_str(&format!(
        "  {} on {} at {}, attempt {}\n",
        run.event,
        short_ref(&run.git_ref),
        short_sha,
        run.attempt
    ));
    let mut state = state_word(&run.status, run.conclusion.as_deref());
    if run.cancel_requested && run.status != "completed" {
        state.push_str(" (cancelling)");
    }
    let took = elapsed(run.started_ms, run.finished_ms, now);
    out.push_str(&format!(
        "  {state}{}\n\n",
        if took.is_empty() {
            String::new()
        } else {
            format!(", {took}")
        }
    ));
    if detail.jobs.is_empty() {
        out.push_str("No jobs ran.\n");
    } else {
        let mut rows = table(&["job", "name", "attempt", "state", "agent", "took"]);
        for job in &detail.jobs {
            let mut state = state_word(&job.status, job.conclusion.as_deref());
            if let Some(reason) = job.reason.as_ref().and_then(reason_text) {
                state.push_str(&format!(" ({reason})"));
            }
            rows.add_row(vec![
                job.id.clone(),
                job.name.clone(),
                job.attempt.to_string(),
                state,
                job.agent_name.clone().unwrap_or_default(),
                elapsed(job.started_ms, job.finished_ms, now),
            ]);
        }
        out.push_str(&render_table(&rows));
    }
    if !detail.notes.is_empty() {
        out.push('\n');
        for note in &detail.notes {
            let name = if note.key.is_empty() {
                "the workflow".to_owned()
            } else {
                note.name.clone()
            };
            match &note.reason {
                Some(reason) => out.push_str(&format!("{name}: {} ({reason})\n", note.conclusion)),
                None => out.push_str(&format!("{name}: {}\n", note.conclusion)),
            }
        }
    }
    out
}

/// A job's failure reason in words (`{kind, detail}` as the server sends it); none for a
/// plain step failure.
fn reason_text(reason: &serde_json::Value) -> Option<String> {
    let kind = reason.get("kind")?.as_str()?;
    let detail = reason.get("detail").and_then(|d| d.as_str());
    match (kind, detail) {
        ("step_failed", _) => None,
        ("timed_out", _) => Some("timed out".to_owned()),
        ("agent_lost", _) => Some("agent lost".to_owned()),
        ("cancelled", _) => None,
        (_, Some(detail)) => Some(detail.to_owned()),
        (other, None) => Some(other.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, status: &str, conclusion: Option<&str>) -> RunSummary {
        RunSummary {
            id: id.to_owned(),
            repository: "acme/widgets".to_owned(),
            number: 7,
            attempt: 1,
            workflow_name: "CI".to_owned(),
            title: "Fix the frobnicator".to_owned(),
            event: "push".to_owned(),
            git_ref: "refs/heads/main".to_owned(),
            sha: "0123456789abcdef".to_owned(),
            status: status.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            cancel_requested: false,
            created_ms: 1_000,
            started_ms: Some(2_000),
            finished_ms: conclusion.map(|_| 62_000),
        }
    }

    #[test]
    fn run_lists_are_plain_tables() {
        let list = RunList {
            runs: vec![
                run("run_b", "in_progress", None),
                RunSummary {
                    attempt: 2,
                    ..run("run_a", "completed", Some("failure"))
                },
            ],
            next: None,
        };
        let text = render_list(&list, 122_000);
        let expected = "\
RUN    REPOSITORY    #              WORKFLOW  REF   EVENT  STATE        CREATED  TOOK
run_b  acme/widgets  7              CI        main  push   in progress  2m ago   2m 00s so far
run_a  acme/widgets  7 (attempt 2)  CI        main  push   failure      2m ago   1m 00s
";
        assert_eq!(text, expected);
        assert_eq!(
            render_list(
                &RunList {
                    runs: vec![],
                    next: None
                },
                0
            ),
            "No runs.\n"
        );
    }

    #[test]
    fn a_run_shows_jobs_with_reasons_and_notes() {
        let detail = RunDetail {
            run: run("run_a", "completed", Some("failure")),
            jobs: vec![JobSummary {
                id: "job_1".to_owned(),
                key: "build".to_owned(),
                leg: 0,
                attempt: 2,
                name: "build".to_owned(),
                status: "completed".to_owned(),
                conclusion: Some("failure".to_owned()),
                reason: Some(serde_json::json!({"kind": "agent_lost"})),
                agent_name: Some("box-1".to_owned()),
                created_ms: 0,
                started_ms: Some(0),
                finished_ms: Some(5_000),
            }],
            notes: vec![Note {
                key: "deploy".to_owned(),
                name: "deploy".to_owned(),
                conclusion: "skipped".to_owned(),
                reason: Some("a needed job failed".to_owned()),
            }],
        };
        let text = render_run(&detail, 100_000);
        assert_eq!(
            text,
            "\
acme/widgets #7 CI (run_a)
  Fix the frobnicator
  push on main at 0123456789, attempt 1
  failure, 1m 00s

JOB    NAME   ATTEMPT  STATE                 AGENT  TOOK
job_1  build  2        failure (agent lost)  box-1  5s

deploy: skipped (a needed job failed)
"
        );
    }
}
