//! `/agents`: registered agents, whether they are heard from, their labels and what they run.

use super::auth::Reader;
use super::display::{Badge, When};
use super::{Layout, PageError};
use crate::app::{AppState, now_ms};
use crate::config::ServerConfig;
use crate::store::{Agent, AgentStatus};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// An agent not heard from for this long is shown offline, whatever it last said: a poll is
/// held at most `poll_hold`, and a running job renews its lease at least every `lease`.
pub fn offline_after_ms(config: &ServerConfig) -> i64 {
    let ms = (config.poll_hold + config.lease).as_millis() + 30_000;
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Whether an agent can be expected to take work now.
pub fn is_online(agent: &Agent, config: &ServerConfig, now: i64) -> bool {
    !agent.revoked
        && agent.status != AgentStatus::Offline
        && now - agent.last_seen_ms <= offline_after_ms(config)
}

pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub badge: Badge,
    pub labels: String,
    pub version: String,
    pub last_seen: When,
    pub registered: When,
    /// Running jobs: (url, name).
    pub jobs: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "agents.html")]
struct AgentsPage {
    layout: Layout,
    agents: Vec<AgentRow>,
}

fn agent_badge(agent: &Agent, online: bool) -> Badge {
    let (class, symbol, label) = if agent.revoked {
        ("status-cancelled", "⊘", "revoked")
    } else if !online {
        ("status-skipped", "○", "offline")
    } else {
        match agent.status {
            AgentStatus::Idle => ("status-success", "●", "idle"),
            AgentStatus::Busy => ("status-running", "●", "busy"),
            AgentStatus::Draining => ("status-queued", "◐", "draining"),
            AgentStatus::Offline => ("status-skipped", "○", "offline"),
        }
    };
    Badge {
        class,
        symbol,
        label: label.to_owned(),
    }
}

/// `GET /agents`.
pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    access: Reader,
) -> Result<Response, PageError> {
    let now = now_ms();
    let mut rows = Vec::new();
    for agent in state.db.list_agents().await? {
        let jobs = state
            .db
            .list_running_jobs_of_agent(&agent.id)
            .await?
            .into_iter()
            .map(|job| (format!("/jobs/{}", job.id), job.name))
            .collect();
        let online = is_online(&agent, &state.config, now);
        rows.push(AgentRow {
            id: agent.id.to_string(),
            badge: agent_badge(&agent, online),
            labels: agent.labels.join(", "),
            version: agent.version.clone(),
            last_seen: When::new(agent.last_seen_ms, now),
            registered: When::new(agent.created_ms, now),
            name: agent.name,
            jobs,
        });
    }
    Ok(AgentsPage {
        layout: Layout::page("Agents", "agents", &access),
        agents: rows,
    }
    .into_response())
}
