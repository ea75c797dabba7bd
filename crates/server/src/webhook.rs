//! `/hooks/github` (GitHub, Gitea, Forgejo) and `/hooks/gitlab`: verify the delivery against the
//! repository's secret over the raw body, store it, answer 202, wake the ingester. Nothing else
//! happens in the request, so the forge gets its answer in milliseconds and a crash after the
//! answer loses nothing (the ingester picks stored deliveries up after a restart).

use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::forge::{self, Forge, read_delivery, repository_name, verify_signature};
use crate::secret::repository_field_aad;
use crate::store::{DeliveryInsert, NewDelivery};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use std::sync::Arc;

pub fn routes(body_limit: usize) -> Router<Arc<AppState>> {
    Router::new()
        .route("/hooks/github", post(github_hook))
        .route("/hooks/gitea", post(gitea_hook))
        .route("/hooks/gitlab", post(gitlab_hook))
        .layer(DefaultBodyLimit::max(body_limit))
}

async fn github_hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // Gitea and Forgejo post GitHub-shaped deliveries here too; their headers tell.
    let forge = if headers.contains_key("X-Gitea-Event") || headers.contains_key("X-Forgejo-Event")
    {
        Forge::Gitea
    } else {
        Forge::GitHub
    };
    receive(&state, forge, &headers, &body).await
}

async fn gitea_hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    receive(&state, Forge::Gitea, &headers, &body).await
}

async fn gitlab_hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    receive(&state, Forge::GitLab, &headers, &body).await
}

async fn receive(
    state: &AppState,
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let info =
        read_delivery(forge, headers, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = repository_name(forge, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let repo = state
        .db
        .find_repository_by_name(&name)
        .await
        .map_err(crate::agent_api::store_error)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "repository {name} is not registered here (gantry repo add)"
            ))
        })?;
    match &repo.webhook_secret {
        Some(sealed) => {
            let secret = state
                .keys
                .open(
                    &repository_field_aad(repo.id.as_str(), "webhook_secret"),
                    sealed,
                )
                .map_err(|e| {
                    ApiError::Internal(anyhow::anyhow!("webhook secret of {name}: {e}"))
                })?;
            verify_signature(forge, &secret, headers, body).map_err(|e| {
                tracing::warn!(repository = %name, error = %e, "webhook signature refused");
                ApiError::Unauthorized
            })?;
        }
        None if repo.allow_unsigned => {}
        None => {
            tracing::warn!(repository = %name, "unsigned webhook refused: the repository has no secret");
            return Err(ApiError::Unauthorized);
        }
    }
    // The body must at least be the JSON of an event (400 here, not a failed delivery later).
    forge::parse_webhook(forge, &info.event, body)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let inserted = state
        .db
        .insert_delivery(
            &NewDelivery {
                forge,
                delivery_id: info.delivery_id.clone(),
                repository_id: repo.id.clone(),
                event: info.event.clone(),
                payload: body.to_vec(),
            },
            now_ms(),
        )
        .await
        .map_err(crate::agent_api::store_error)?;
    let (duplicate, id) = match &inserted {
        DeliveryInsert::Inserted(id) => (false, id),
        DeliveryInsert::Duplicate(id) => (true, id),
    };
    if !duplicate {
        state.wake.deliveries.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "delivery": id.to_string(),
            "duplicate": duplicate,
        })),
    ))
}
