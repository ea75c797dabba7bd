//! Probes for load balancers and orchestrators: `/healthz` answers while the process serves
//! HTTP; `/readyz` also checks that the database answers (503 when it does not). Neither needs
//! a token nor says more than that.

use crate::app::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long the readiness probe waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the process can serve requests (the database answers).
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(PING_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            // The details stay in the server log: they may name hosts.
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err(ApiError::Unavailable("the database does not answer".into()))
        }
        Err(_) => Err(ApiError::Unavailable(format!(
            "the database did not answer within {} s",
            PING_TIMEOUT.as_secs()
        ))),
    }
}
