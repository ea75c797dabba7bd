//! `/hooks/github` (GitHub, Gitea, Forgejo) and `/hooks/gitlab`: verify the delivery against the
//! repository's secret over the raw body, store it, answer 202, wake the ingester. Nothing else
//! happens in the request, so the forge gets its answer in milliseconds and a crash after the
//! answer loses nothing (the ingester picks stored deliveries up after a restart).

use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::forge::{self, Forge, read_delivery, repository_name, verify_signature};
use crate::secret::repository_field_aad;
use crate::store::{DeliveryInsert, NewDelivery};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

pub fn routes(body_limit: usize) -> Router<Arc<AppState>> {
    Router::new()
        .route("/hooks/github", post(github_hook))
        .route("/hooks/gitea", post(gitea_hook))
        .route("/hooks/gitlab", post(gitlab_hook))
        .layer(axum::Extension(BodyLimit(body_limit)))
}

/// The largest delivery accepted, in bytes.
#[derive(Clone, Copy)]
struct BodyLimit(usize);

/// How much of an oversized delivery is still read (and dropped) before the 413 goes out, and
/// for how long: a server that answers and closes while the sender is still writing resets the
/// connection, and the sender sees a broken connection instead of the 413 that says why.
const DRAIN_BYTES: usize = 128 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, up to `limit` bytes; a larger one is read to its end (within the drain
/// bounds) and refused with 413.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => {
                return Err(ApiError::BadRequest(format!(
                    "the request body could not be read: {e}"
                )));
            }
            Ok(None) => break,
            // Too slow to drain: answer now.
            Err(_) if total > limit => break,
            Err(_) => {
                return Err(ApiError::BadRequest(
                    "the request body did not arrive in time".into(),
                ));
            }
        };
        total = total.saturating_add(chunk.len());
        if total <= limit {
            kept.extend_from_slice(&chunk);
        } else {
            kept = Vec::new();
            if total > DRAIN_BYTES {
                break;
            }
        }
    }
    if total > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(kept))
}

async fn github_hook(
    State(state): State<Arc<AppState>>,
    axum::Extension(BodyLimit(limit)): axum::Extension<BodyLimit>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let body = read_body(body, limit).await?;
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
    axum::Extension(BodyLimit(limit)): axum::Extension<BodyLimit>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let body = read_body(body, limit).await?;
    receive(&state, Forge::Gitea, &headers, &body).await
}

async fn gitlab_hook(
    State(state): State<Arc<AppState>>,
    axum::Extension(BodyLimit(limit)): axum::Extension<BodyLimit>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let body = read_body(body, limit).await?;
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

#[cfg(test)]
mod body_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn chunked(chunks: usize, size: usize, sent: Arc<AtomicUsize>) -> Body {
        let stream = futures::stream::iter((0..chunks).map(move |_| {
            sent.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size]))
        }));
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_kept_whole() {
        let sent = Arc::new(AtomicUsize::new(0));
        let body = read_body(chunked(4, 1000, sent), 4000).await.expect("kept");
        assert_eq!(body.len(), 4000);
    }

    #[tokio::test]
    async fn an_oversized_body_is_read_to_its_end_before_the_413() {
        let sent = Arc::new(AtomicUsize::new(0));
        let refused = read_body(chunked(40, 1000, sent.clone()), 4000).await;
        assert!(
            matches!(refused, Err(ApiError::PayloadTooLarge { limit: 4000 })),
            "{refused:?}"
        );
        // Every chunk was taken from the sender, so the answer reaches it.
        assert_eq!(sent.load(Ordering::SeqCst), 40);
    }
}
