//! `/api/v1`: the REST API for people and the CLI (docs/api.md has every endpoint with an
//! example). JSON in and out; errors are [`ApiError`](crate::error::ApiError)'s
//! `{error, message}`.
//!
//! Who may do what ([`auth`]): an API token (`Authorization: Bearer …`) carries a role,
//! `read < write < admin`. Reading needs `read`, or nothing when the server allows anonymous
//! reading; acting on runs and jobs (cancel, re-run, dispatch) and repository secrets need
//! `write`; repositories, global secrets, agents and tokens need `admin`. A missing or unknown
//! token is 401, a token whose role is too low 403, and an id that does not exist 404.
//!
//! Secret values (webhook secrets, status tokens, secrets) go in sealed and never come out:
//! answers say whether one is set, never what it is. Tokens are shown once, when created.
//!
//! This module reads and writes through the store and the run graph helpers; it never runs
//! jobs and never talks to agents (cancels reach them through the store and the wake-ups).

pub mod agents;
pub mod auth;
pub mod dispatch;
pub mod health;
pub mod jobs;
pub mod logs;
pub mod repositories;
pub mod rerun;
pub mod runs;
pub mod secrets;
pub mod tokens;

use crate::app::AppState;
use axum::Router;
use axum::routing::{get, post, put};
use std::sync::Arc;

pub use tokens::ensure_initial_admin_token;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/api/v1/repositories",
            get(repositories::list_repositories).post(repositories::create_repository),
        )
        .route(
            "/api/v1/repositories/{id}",
            get(repositories::get_repository)
                .patch(repositories::update_repository)
                .delete(repositories::delete_repository),
        )
        .route(
            "/api/v1/repositories/{id}/dispatch",
            post(dispatch::dispatch_workflow),
        )
        .route("/api/v1/runs", get(runs::list_runs))
        .route("/api/v1/runs/{id}", get(runs::get_run))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel_run))
        .route("/api/v1/runs/{id}/rerun", post(runs::rerun_run))
        .route("/api/v1/jobs/{id}", get(jobs::get_job))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/api/v1/jobs/{id}/logs", get(logs::raw_log))
        .route("/api/v1/jobs/{id}/logs/live", get(logs::live_log))
        .route("/api/v1/agents", get(agents::list_agents))
        .route("/api/v1/agents/{id}/revoke", post(agents::revoke_agent))
        .route("/api/v1/queue", get(agents::list_queue))
        .route("/api/v1/secrets", get(secrets::list_secrets))
        .route(
            "/api/v1/secrets/{name}",
            put(secrets::put_secret).delete(secrets::delete_secret),
        )
        .route(
            "/api/v1/tokens",
            get(tokens::list_api_tokens).post(tokens::create_api_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(tokens::delete_api_token),
        )
        .route(
            "/api/v1/agent-tokens",
            get(tokens::list_registration_tokens).post(tokens::create_registration_token),
        )
        .route(
            "/api/v1/agent-tokens/{id}/revoke",
            post(tokens::revoke_registration_token),
        )
}
