//! `/queue`: the queued jobs, oldest first, and why each one waits: its concurrency group is
//! busy, no agent has its labels, the agents that have them are offline or busy.

use super::agents::is_online;
use super::auth::Reader;
use super::display::{When, repository_path};
use super::{Layout, PageError};
use crate::app::{AppState, now_ms};
use crate::config::ServerConfig;
use crate::store::{Agent, AgentStatus, QueuedJob};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// Queued jobs shown at most.
const MAX_QUEUED: u32 = 500;

pub struct QueueRow {
    pub position: usize,
    pub url: String,
    pub name: String,
    pub run_url: String,
    pub run_label: String,
    pub repository: String,
    pub repository_url: String,
    pub labels: String,
    pub queued: When,
    pub reason: String,
    /// The running job that holds this one back: (url, id).
    pub blocked_by: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    jobs: Vec<QueueRow>,
    online_agents: usize,
}

/// Why a queued job has not started.
pub fn why_waiting(job: &QueuedJob, agents: &[Agent], config: &ServerConfig, now: i64) -> String {
    if job.blocked_by.is_some() {
        let group = job.concurrency_group.as_deref().unwrap_or_default();
        return format!("waits for another job of its concurrency group \u{201c}{group}\u{201d}");
    }
    let fitting: Vec<&Agent> = agents
        .iter()
        .filter(|agent| !agent.revoked)
        .filter(|agent| {
            job.labels.iter().all(|label| {
                agent
                    .labels
                    .iter()
                    .any(|offered| offered.eq_ignore_ascii_case(label))
            })
        })
        .collect();
    if fitting.is_empty() {
        return if job.labels.is_empty() {
            "no agent is registered".to_owned()
        } else {
            format!("no agent has the labels {}", job.labels.join(", "))
        };
    }
    let online: Vec<&&Agent> = fitting
        .iter()
        .filter(|agent| is_online(agent, config, now))
        .collect();
    if online.is_empty() {
        let n = fitting.len();
        return if n == 1 {
            "the one agent that can take it is offline".to_owned()
        } else {
            format!("the {n} agents that can take it are offline")
        };
    }
    if online
        .iter()
        .all(|agent| agent.status == AgentStatus::Draining)
    {
        return "the agents that can take it are draining".to_owned();
    }
    if online.iter().all(|agent| agent.status != AgentStatus::Idle) {
        return "every agent that can take it is busy".to_owned();
    }
    "an agent can take it: it should start in a moment".to_owned()
}

/// `GET /queue`.
pub async fn show_queue(
    State(state): State<Arc<AppState>>,
    access: Reader,
) -> Result<Response, PageError> {
    let now = now_ms();
    let queued = state.db.list_queued_jobs(MAX_QUEUED).await?;
    let agents = state.db.list_agents().await?;
    let repositories: HashMap<String, String> = state
        .db
        .list_repositories()
        .await?
        .into_iter()
        .map(|r| (r.id.into_string(), r.name))
        .collect();
    let mut runs: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::with_capacity(queued.len());
    for (i, job) in queued.iter().enumerate() {
        let run_label = match runs.get(job.run_id.as_str()) {
            Some(label) => label.clone(),
            None => {
                let label = match state.db.find_run(&job.run_id).await? {
                    Some(run) => format!("{} #{}", run.workflow_name, run.number),
                    None => job.run_id.to_string(),
                };
                runs.insert(job.run_id.to_string(), label.clone());
                label
            }
        };
        let repository = repositories
            .get(job.repository_id.as_str())
            .cloned()
            .unwrap_or_else(|| job.repository_id.to_string());
        rows.push(QueueRow {
            position: i + 1,
            url: format!("/jobs/{}", job.job_id),
            name: job.name.clone(),
            run_url: format!("/runs/{}", job.run_id),
            run_label,
            repository_url: repository_path(&repository),
            repository,
            labels: job.labels.join(", "),
            queued: When::new(job.queued_ms, now),
            reason: why_waiting(job, &agents, &state.config, now),
            blocked_by: job.blocked_by.as_ref().map(|id| format!("/jobs/{id}")),
        });
    }
    let online_agents = agents
        .iter()
        .filter(|agent| is_online(agent, &state.config, now))
        .count();
    Ok(QueuePage {
        layout: Layout::page("Queue", "queue", &access),
        jobs: rows,
        online_agents,
    }
    .into_response())
}
