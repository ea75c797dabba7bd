//! `/api/v1/agents` (the registered agents, what they run, when they were last heard from;
//! revoking one) and `/api/v1/queue` (the queued jobs, each with the reason it still waits).

use super::auth::{Admin, Reader};
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::store::{Agent, AgentId, AgentStatus, QueuedJob};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// How many queued jobs the queue answer lists.
const QUEUE_LIMIT: u32 = 500;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    /// `idle`, `busy`, `draining` or `offline` (revoked, or not heard from for a while).
    pub status: String,
    pub revoked: bool,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// Jobs it runs now.
    pub running: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// An agent not heard from for this long counts as offline: it polls at least every poll
/// hold and heartbeats every few seconds while busy.
fn offline_after_ms(state: &AppState) -> i64 {
    let hold = state.config.poll_hold + state.config.lease;
    i64::try_from(hold.as_millis())
        .unwrap_or(i64::MAX / 2)
        .saturating_mul(2)
}

/// The status to show: what the agent reported, unless it is revoked or silent.
fn effective_status(agent: &Agent, now: i64, offline_after: i64) -> AgentStatus {
    if agent.revoked || now - agent.last_seen_ms > offline_after {
        AgentStatus::Offline
    } else {
        agent.status
    }
}

pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
) -> Result<Json<AgentList>, ApiError> {
    let now = now_ms();
    let offline_after = offline_after_ms(&state);
    let mut views = Vec::new();
    for agent in state.db.list_agents().await.map_err(store_error)? {
        let running = state
            .db
            .list_running_jobs_of_agent(&agent.id)
            .await
            .map_err(store_error)?;
        views.push(AgentView {
            id: agent.id.to_string(),
            name: agent.name.clone(),
            labels: agent.labels.clone(),
            version: agent.version.clone(),
            status: effective_status(&agent, now, offline_after)
                .as_str()
                .to_owned(),
            revoked: agent.revoked,
            created_ms: agent.created_ms,
            last_seen_ms: agent.last_seen_ms,
            running: running.iter().map(|j| j.id.to_string()).collect(),
        });
    }
    Ok(Json(AgentList { agents: views }))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeAnswer {
    pub agent: String,
    /// Jobs it was running, now failed as `agent_lost`.
    pub lost_jobs: Vec<String>,
    /// Of those, the ones queued again for another agent.
    pub retried_jobs: Vec<String>,
}

pub async fn revoke_agent(
    State(state): State<Arc<AppState>>,
    Admin(token): Admin,
    Path(id): Path<String>,
) -> Result<Json<RevokeAnswer>, ApiError> {
    let agent_id = AgentId::from(id.as_str());
    if state
        .db
        .find_agent(&agent_id)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("agent {id} not found")));
    }
    let now = now_ms();
    let lost = state
        .db
        .revoke_agent(&agent_id, now)
        .await
        .map_err(store_error)?;
    let mut retried = Vec::new();
    for job in &lost {
        if job.retryable(state.config.lost_job_retries) {
            match state.db.insert_retry_attempt(&job.job_id, now).await {
                Ok(next) => retried.push(next.id.to_string()),
                Err(e) => tracing::warn!(job = %job.job_id, error = %e, "could not retry the job"),
            }
        }
        crate::web::notify_log(&job.job_id);
    }
    tracing::warn!(agent = %agent_id, by = %token.name, lost = lost.len(), "agent revoked");
    state.wake.scheduler.notify_one();
    state.wake.jobs.notify_waiters();
    Ok(Json(RevokeAnswer {
        agent: agent_id.to_string(),
        lost_jobs: lost.iter().map(|j| j.job_id.to_string()).collect(),
        retried_jobs: retried,
    }))
}

/// A queued job and why it waits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QueueEntry {
    pub job_id: String,
    pub run_id: String,
    pub repository_id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub concurrency_group: Option<String>,
    pub queued_ms: i64,
    /// In words: "no agent has labels linux, gpu", "all 2 matching agents busy",
    /// "concurrency group deploy (held by job job_…)", ...
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueList {
    pub jobs: Vec<QueueEntry>,
}

pub async fn list_queue(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
) -> Result<Json<QueueList>, ApiError> {
    Ok(Json(QueueList {
        jobs: queue_entries(&state).await?,
    }))
}

/// The queue, oldest first, with the reason each job waits (also for the web UI).
pub async fn queue_entries(state: &AppState) -> Result<Vec<QueueEntry>, ApiError> {
    let queued = state
        .db
        .list_queued_jobs(QUEUE_LIMIT)
        .await
        .map_err(store_error)?;
    let agents = state.db.list_agents().await.map_err(store_error)?;
    let now = now_ms();
    let offline_after = offline_after_ms(state);
    let statuses: Vec<(AgentStatus, HashSet<String>)> = agents
        .iter()
        .map(|a| {
            (
                effective_status(a, now, offline_after),
                a.labels.iter().map(|l| l.to_lowercase()).collect(),
            )
        })
        .collect();
    Ok(queued
        .iter()
        .map(|job| QueueEntry {
            job_id: job.job_id.to_string(),
            run_id: job.run_id.to_string(),
            repository_id: job.repository_id.to_string(),
            name: job.name.clone(),
            labels: job.labels.clone(),
            concurrency_group: job.concurrency_group.clone(),
            queued_ms: job.queued_ms,
            reason: wait_reason(job, &statuses),
        })
        .collect())
}

/// Why a queued job has no agent yet, given each agent's status and labels (lowercase).
pub fn wait_reason(job: &QueuedJob, agents: &[(AgentStatus, HashSet<String>)]) -> String {
    if let (Some(group), Some(holder)) = (&job.concurrency_group, &job.blocked_by) {
        return format!("concurrency group {group} (held by job {holder})");
    }
    let fits = |labels: &HashSet<String>| {
        job.labels
            .iter()
            .all(|needed| labels.contains(&needed.to_lowercase()))
    };
    let matching: Vec<AgentStatus> = agents
        .iter()
        .filter(|(_, labels)| fits(labels))
        .map(|(status, _)| *status)
        .collect();
    let labels = if job.labels.is_empty() {
        "(any)".to_owned()
    } else {
        job.labels.join(", ")
    };
    if matching.is_empty() {
        return format!("no agent has labels {labels}");
    }
    let online: Vec<AgentStatus> = matching
        .iter()
        .copied()
        .filter(|s| *s != AgentStatus::Offline)
        .collect();
    if online.is_empty() {
        return match matching.len() {
            1 => format!("the only agent with labels {labels} is offline"),
            n => format!("all {n} agents with labels {labels} are offline"),
        };
    }
    let busy = online
        .iter()
        .filter(|s| matches!(s, AgentStatus::Busy | AgentStatus::Draining))
        .count();
    if busy == online.len() {
        let n = online.len();
        return format!(
            "all {n} matching agent{} busy",
            if n == 1 { " is" } else { "s" }
        );
    }
    "waiting for a matching agent to ask for work".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobId, RepositoryId, RunId};

    fn job(labels: &[&str], group: Option<&str>, blocked_by: Option<&str>) -> QueuedJob {
        QueuedJob {
            job_id: JobId::from("job_1"),
            run_id: RunId::from("run_1"),
            repository_id: RepositoryId::from("repo_1"),
            name: "build".into(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            concurrency_group: group.map(str::to_owned),
            queued_ms: 0,
            blocked_by: blocked_by.map(JobId::from),
        }
    }

    fn agent(status: AgentStatus, labels: &[&str]) -> (AgentStatus, HashSet<String>) {
        (status, labels.iter().map(|l| (*l).to_owned()).collect())
    }

    #[test]
    fn queued_jobs_say_why_they_wait() {
        let linux_busy = agent(AgentStatus::Busy, &["linux", "x64"]);
        let linux_idle = agent(AgentStatus::Idle, &["linux"]);
        let gone = agent(AgentStatus::Offline, &["gpu"]);
        let check = |job: QueuedJob, agents: &[(AgentStatus, HashSet<String>)], expected: &str| {
            assert_eq!(wait_reason(&job, agents), expected);
        };
        check(
            job(&["linux", "gpu"], None, None),
            std::slice::from_ref(&linux_busy),
            "no agent has labels linux, gpu",
        );
        check(
            job(&["Linux"], None, None),
            &[linux_busy.clone(), linux_busy.clone()],
            "all 2 matching agents busy",
        );
        check(
            job(&["linux"], None, None),
            std::slice::from_ref(&linux_busy),
            "all 1 matching agent is busy",
        );
        check(
            job(&["gpu"], None, None),
            &[gone],
            "the only agent with labels gpu is offline",
        );
        check(
            job(&["linux"], Some("deploy"), Some("job_9")),
            std::slice::from_ref(&linux_idle),
            "concurrency group deploy (held by job job_9)",
        );
        check(
            job(&["linux"], None, None),
            &[linux_idle],
            "waiting for a matching agent to ask for work",
        );
        check(job(&[], None, None), &[], "no agent has labels (any)");
    }
}
