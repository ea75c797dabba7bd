//! `/api/v1/tokens` (API tokens for people and scripts) and `/api/v1/agent-tokens`
//! (registration tokens agents exchange for their own credential). Both need `admin`. A token
//! is shown once, in the answer that creates it; the store keeps only its sha256.
//!
//! The first admin token: [`ensure_initial_admin_token`] creates one when the server has no
//! API token at all, and `gantry server` prints it at that first start.

use super::auth::{Admin, ApiJson};
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::store::{
    ApiRole, ApiToken, ApiTokenId, Db, RegistrationToken, RegistrationTokenId, StoreError,
    generate_token, hash_token,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What API tokens start with (so a leaked one is recognisable).
pub const API_TOKEN_PREFIX: &str = "gantry_api_";
/// What registration tokens start with.
pub const REGISTRATION_TOKEN_PREFIX: &str = "gantry_reg_";
/// How long a registration token lasts unless told otherwise.
pub const DEFAULT_REGISTRATION_HOURS: u64 = 24;
/// The longest a registration token may last.
pub const MAX_REGISTRATION_HOURS: u64 = 365 * 24;
/// The name of the token [`ensure_initial_admin_token`] creates.
pub const INITIAL_TOKEN_NAME: &str = "initial-admin";

/// Creates an `admin` API token named [`INITIAL_TOKEN_NAME`] when the store has no API token,
/// and returns it (to print once); `None` when tokens exist already.
pub async fn ensure_initial_admin_token(db: &Db) -> Result<Option<String>, StoreError> {
    if !db.list_api_tokens().await?.is_empty() {
        return Ok(None);
    }
    let token = generate_token(API_TOKEN_PREFIX);
    db.insert_api_token(
        INITIAL_TOKEN_NAME,
        &hash_token(&token),
        ApiRole::Admin,
        now_ms(),
    )
    .await?;
    tracing::info!("created the initial admin API token");
    Ok(Some(token))
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

impl ApiTokenView {
    fn new(token: &ApiToken) -> ApiTokenView {
        ApiTokenView {
            id: token.id.to_string(),
            name: token.name.clone(),
            role: token.role.as_str().to_owned(),
            created_ms: token.created_ms,
            last_used_ms: token.last_used_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ApiTokenList {
    pub tokens: Vec<ApiTokenView>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

/// A token just created: the only answer that contains it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub info: ApiTokenView,
    pub token: String,
}

fn check_label(what: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "the {what} must be 1 to 200 characters, without control characters"
        )));
    }
    Ok(text.to_owned())
}

pub async fn list_api_tokens(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<ApiTokenList>, ApiError> {
    let tokens = state.db.list_api_tokens().await.map_err(store_error)?;
    Ok(Json(ApiTokenList {
        tokens: tokens.iter().map(ApiTokenView::new).collect(),
    }))
}

pub async fn create_api_token(
    State(state): State<Arc<AppState>>,
    Admin(by): Admin,
    ApiJson(body): ApiJson<CreateApiToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    let name = check_label("name", &body.name)?;
    let role = ApiRole::parse(body.role.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role {:?} is not one of read, write, admin",
            body.role
        ))
    })?;
    let token = generate_token(API_TOKEN_PREFIX);
    let stored = state
        .db
        .insert_api_token(&name, &hash_token(&token), role, now_ms())
        .await
        .map_err(store_error)?;
    tracing::info!(token = %stored.id, %name, role = role.as_str(), by = %by.name, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            info: ApiTokenView::new(&stored),
            token,
        }),
    ))
}

pub async fn delete_api_token(
    State(state): State<Arc<AppState>>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ApiTokenId::from(id);
    state.db.delete_api_token(&id).await.map_err(store_error)?;
    tracing::info!(token = %id, by = %by.name, "API token deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationTokenView {
    pub id: String,
    pub description: String,
    pub created_ms: i64,
    /// `null`: valid until revoked.
    pub expires_ms: Option<i64>,
    pub revoked: bool,
}

impl RegistrationTokenView {
    fn new(token: &RegistrationToken) -> RegistrationTokenView {
        RegistrationTokenView {
            id: token.id.to_string(),
            description: token.description.clone(),
            created_ms: token.created_ms,
            expires_ms: token.expires_ms,
            revoked: token.revoked,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RegistrationTokenList {
    pub tokens: Vec<RegistrationTokenView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    #[serde(default)]
    pub description: Option<String>,
    /// Hours until it expires (default 24, at most a year).
    #[serde(default)]
    pub expires_in_hours: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedRegistrationToken {
    #[serde(flatten)]
    pub info: RegistrationTokenView,
    pub token: String,
}

pub async fn list_registration_tokens(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<RegistrationTokenList>, ApiError> {
    let tokens = state
        .db
        .list_registration_tokens()
        .await
        .map_err(store_error)?;
    Ok(Json(RegistrationTokenList {
        tokens: tokens.iter().map(RegistrationTokenView::new).collect(),
    }))
}

pub async fn create_registration_token(
    State(state): State<Arc<AppState>>,
    Admin(by): Admin,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedRegistrationToken>), ApiError> {
    let request: CreateRegistrationToken = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRegistrationToken::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("the body is not a registration token request: {e}"))
        })?
    };
    let description = match &request.description {
        Some(text) => check_label("description", text)?,
        None => format!("created by {}", by.name),
    };
    let hours = request
        .expires_in_hours
        .unwrap_or(DEFAULT_REGISTRATION_HOURS);
    if hours == 0 || hours > MAX_REGISTRATION_HOURS {
        return Err(ApiError::BadRequest(format!(
            "expires_in_hours must be 1 to {MAX_REGISTRATION_HOURS}"
        )));
    }
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(hours).unwrap_or(0) * 3_600_000);
    let token = generate_token(REGISTRATION_TOKEN_PREFIX);
    let stored = state
        .db
        .insert_registration_token(&hash_token(&token), &description, Some(expires), now)
        .await
        .map_err(store_error)?;
    tracing::info!(token = %stored.id, by = %by.name, hours, "registration token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedRegistrationToken {
            info: RegistrationTokenView::new(&stored),
            token,
        }),
    ))
}

pub async fn revoke_registration_token(
    State(state): State<Arc<AppState>>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = RegistrationTokenId::from(id);
    state
        .db
        .revoke_registration_token(&id)
        .await
        .map_err(store_error)?;
    tracing::info!(token = %id, by = %by.name, "registration token revoked");
    Ok(StatusCode::NO_CONTENT)
}
