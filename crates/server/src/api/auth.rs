//! Who is calling the REST API, and whether they may. Handlers take one of the extractors
//! [`Reader`], [`Writer`] or [`Admin`]; each resolves the bearer token to its stored role and
//! refuses before the handler runs:
//!
//! | caller | `Reader` | `Writer` | `Admin` |
//! | --- | --- | --- | --- |
//! | no token, anonymous reading on | yes | 401 | 401 |
//! | no token, anonymous reading off | 401 | 401 | 401 |
//! | unknown or deleted token | 401 | 401 | 401 |
//! | `read` token | yes | 403 | 403 |
//! | `write` token | yes | yes | 403 |
//! | `admin` token | yes | yes | yes |
//!
//! A token that is presented but unknown is refused even where no token is needed, so a typo
//! is noticed instead of silently reading as anonymous. Also here: [`ApiJson`] and
//! [`ApiQuery`], the JSON body and query extractors whose refusals are `ApiError`s.

use crate::agent_api::{bearer, store_error};
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::store::{ApiRole, ApiToken, hash_token};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// How often a token's `last_used_ms` is written (at most once a minute per token).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The token of the request, if it carries one; 401 for a token the store does not know.
async fn presented_token(parts: &Parts, state: &AppState) -> Result<Option<ApiToken>, ApiError> {
    let Some(token) = bearer(parts) else {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            // Something other than a bearer token: say so rather than read as anonymous.
            return Err(ApiError::Unauthorized);
        }
        return Ok(None);
    };
    let found = state
        .db
        .find_api_token_by_hash(&hash_token(token))
        .await
        .map_err(store_error)?
        .ok_or(ApiError::Unauthorized)?;
    let now = now_ms();
    if found
        .last_used_ms
        .is_none_or(|last| now - last >= TOUCH_EVERY_MS)
    {
        // Best effort: a failed bookkeeping write must not fail the request.
        if let Err(e) = state.db.touch_api_token(&found.id, now).await {
            tracing::debug!(token = %found.id, error = %e, "could not record the token's use");
        }
    }
    Ok(Some(found))
}

/// The caller's token, checked against `needed`.
async fn authorize(
    parts: &Parts,
    state: &AppState,
    needed: ApiRole,
) -> Result<Option<ApiToken>, ApiError> {
    let token = presented_token(parts, state).await?;
    match &token {
        None if needed == ApiRole::Read && state.config.anonymous_read => Ok(None),
        None => Err(ApiError::Unauthorized),
        Some(token) if token.role >= needed => Ok(Some(token.clone())),
        Some(token) => Err(ApiError::Forbidden(format!(
            "this needs a token with the {} role; the token `{}` has the {} role",
            needed.as_str(),
            token.name,
            token.role.as_str()
        ))),
    }
}

/// A caller allowed to read: any valid token, or nobody when anonymous reading is on.
pub struct Reader(pub Option<ApiToken>);

/// A caller with a `write` (or `admin`) token.
pub struct Writer(pub ApiToken);

/// A caller with an `admin` token.
pub struct Admin(pub ApiToken);

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Reader(authorize(parts, state, ApiRole::Read).await?))
    }
}

impl FromRequestParts<Arc<AppState>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authorize(parts, state, ApiRole::Write)
            .await?
            .map(Writer)
            .ok_or(ApiError::Unauthorized)
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authorize(parts, state, ApiRole::Admin)
            .await?
            .map(Admin)
            .ok_or(ApiError::Unauthorized)
    }
}

/// A JSON body; a body that is not the expected JSON is a 400 `ApiError`.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Query parameters; parameters that do not parse are a 400 `ApiError`.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}
