//! The commit status sender: sends the outbox's statuses to the forges, in order per run,
//! retrying what can be retried and recording what cannot. Repositories without a status URL
//! and token keep their statuses in Gantry only.

use crate::app::{AppState, now_ms};
use crate::forge::status::{StatusClient, StatusUpdate, http_client};
use crate::secret::repository_field_aad;
use crate::store::{OutboxStatus, RunId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Runs forever: sends when woken, and every two seconds.
pub async fn run_status_sender(state: Arc<AppState>) {
    let Ok(http) = http_client(Duration::from_secs(20), Duration::from_secs(10)) else {
        tracing::error!("could not build the HTTP client for commit statuses");
        return;
    };
    loop {
        let woken = state.wake.statuses.notified();
        send_pending(&state, &http).await;
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Sends the statuses that are due. A run whose earlier status failed waits, so statuses of a
/// run always arrive in order.
pub async fn send_pending(state: &AppState, http: &reqwest::Client) {
    let statuses = match state.db.list_unsent_statuses(now_ms(), 200).await {
        Ok(statuses) => statuses,
        Err(e) => {
            tracing::warn!(error = %e, "could not list commit statuses");
            return;
        }
    };
    let mut blocked: HashSet<RunId> = HashSet::new();
    for status in statuses {
        if blocked.contains(&status.run_id) {
            continue;
        }
        if !send_one(state, http, &status).await {
            blocked.insert(status.run_id.clone());
        }
    }
}

/// Sends one status; false when it has to be tried again later.
async fn send_one(state: &AppState, http: &reqwest::Client, status: &OutboxStatus) -> bool {
    let now = now_ms();
    let repo = match state.db.get_repository(&status.repository_id).await {
        Ok(repo) => repo,
        Err(e) => {
            tracing::warn!(error = %e, "commit status of an unknown repository");
            return false;
        }
    };
    let (Some(url), Some(sealed)) = (&repo.status_url, &repo.status_token) else {
        // Nothing to send to: the status is kept for the API and UI only.
        let _ = state.db.mark_status_sent(&status.id, now).await;
        return true;
    };
    let token = match state.keys.open(
        &repository_field_aad(repo.id.as_str(), "status_token"),
        sealed,
    ) {
        Ok(token) => String::from_utf8_lossy(&token).into_owned(),
        Err(e) => {
            let _ = state
                .db
                .mark_status_attempt_failed(&status.id, &format!("status token: {e}"), None)
                .await;
            return true;
        }
    };
    let client = match StatusClient::with_http_client(http.clone(), repo.forge, url, &token) {
        Ok(client) => client,
        Err(e) => {
            let _ = state
                .db
                .mark_status_attempt_failed(&status.id, &e.to_string(), None)
                .await;
            return true;
        }
    };
    let target_url = status.target_url.clone().or_else(|| {
        Some(format!(
            "{}/runs/{}",
            state.config.public_url.trim_end_matches('/'),
            status.run_id
        ))
    });
    let update = StatusUpdate {
        repo: repo.name.clone(),
        sha: status.sha.clone(),
        state: status.state,
        context: status.context.clone(),
        description: status.description.clone(),
        target_url,
    };
    match client.send(&update).await {
        Ok(()) => {
            let _ = state.db.mark_status_sent(&status.id, now_ms()).await;
            true
        }
        Err(e) if e.is_retryable() && status.attempts < 20 => {
            let wait = e
                .retry_after()
                .unwrap_or_else(|| Duration::from_millis(1000 << status.attempts.clamp(0, 8)));
            let retry_at = now + i64::try_from(wait.as_millis()).unwrap_or(60_000);
            let _ = state
                .db
                .mark_status_attempt_failed(&status.id, &e.to_string(), Some(retry_at))
                .await;
            false
        }
        Err(e) => {
            tracing::warn!(repository = %repo.name, error = %e, "commit status refused; giving up on it");
            let _ = state
                .db
                .mark_status_attempt_failed(&status.id, &e.to_string(), None)
                .await;
            true
        }
    }
}
