//! `/api/v1/secrets`: secrets for jobs, global or per repository (`?repository=` with an id or
//! `owner/repo`; a repository secret hides a global one of the same name). Repository secrets
//! need `write`, global ones `admin`. A value is sealed with the key ring (associated data:
//! the repository id or `global`, and the name) before it reaches the store, and is never
//! returned: lists show names and dates only.

use super::auth::{ApiJson, ApiQuery, Writer};
use super::repositories::lookup_repository;
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::secret::secret_aad;
use crate::store::{ApiRole, ApiToken, Repository, SecretMeta, StoreError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Shorter values are refused: masking them in logs would hide every occurrence of a few
/// common letters, and they are too short to be a secret anyway.
pub const MIN_VALUE_LEN: usize = 4;
/// GitHub's limit for one secret.
pub const MAX_VALUE_LEN: usize = 48 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// A repository id or `owner/repo`; absent for global secrets.
    pub repository: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    pub value: String,
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecret").finish_non_exhaustive()
    }
}

/// A secret without its value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretView {
    pub name: String,
    /// The repository's name; absent for a global secret.
    pub repository: Option<String>,
    pub repository_id: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl SecretView {
    fn new(meta: &SecretMeta, repo: Option<&Repository>) -> SecretView {
        SecretView {
            name: meta.name.clone(),
            repository: repo.map(|r| r.name.clone()),
            repository_id: meta.repository_id.as_ref().map(|r| r.to_string()),
            created_ms: meta.created_ms,
            updated_ms: meta.updated_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SecretList {
    pub secrets: Vec<SecretView>,
}

/// GitHub's rules for secret names: letters, digits and `_`, not starting with a digit or
/// `GITHUB_`; compared without case, so stored in upper case.
pub fn normalize_name(name: &str) -> Result<String, ApiError> {
    let upper = name.trim().to_ascii_uppercase();
    let valid = !upper.is_empty()
        && upper.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !upper.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(ApiError::BadRequest(format!(
            "{name:?} is not a secret name: use letters, digits and _, not starting with a digit"
        )));
    }
    if upper.starts_with("GITHUB_") {
        return Err(ApiError::BadRequest(format!(
            "{name:?}: names starting with GITHUB_ are reserved"
        )));
    }
    Ok(upper)
}

/// The repository of `?repository=`, and whether the caller may change secrets there.
async fn scope(
    state: &AppState,
    query: &ScopeQuery,
    token: &ApiToken,
) -> Result<Option<Repository>, ApiError> {
    match &query.repository {
        Some(text) => Ok(Some(lookup_repository(state, text).await?)),
        None if token.role >= ApiRole::Admin => Ok(None),
        None => Err(ApiError::Forbidden(format!(
            "global secrets need a token with the admin role; the token `{}` has the {} role \
             (pass repository= for a repository secret)",
            token.name,
            token.role.as_str()
        ))),
    }
}

pub async fn put_secret(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
    ApiJson(body): ApiJson<PutSecret>,
) -> Result<Json<SecretView>, ApiError> {
    let name = normalize_name(&name)?;
    let repo = scope(&state, &query, &token).await?;
    let length = body.value.chars().count();
    if length < MIN_VALUE_LEN {
        return Err(ApiError::BadRequest(format!(
            "the value is {length} characters long; secrets need at least {MIN_VALUE_LEN} (a \
             shorter one would be masked everywhere it appears in logs)"
        )));
    }
    if body.value.len() > MAX_VALUE_LEN {
        return Err(ApiError::BadRequest(format!(
            "the value is larger than {MAX_VALUE_LEN} bytes"
        )));
    }
    let repository_id = repo.as_ref().map(|r| r.id.clone());
    let sealed = state.keys.seal(
        &secret_aad(repository_id.as_ref().map(|r| r.as_str()), &name),
        body.value.as_bytes(),
    );
    let meta = state
        .db
        .upsert_secret(repository_id.as_ref(), &name, &sealed, now_ms())
        .await
        .map_err(store_error)?;
    tracing::info!(
        secret = %name,
        repository = repo.as_ref().map(|r| r.name.as_str()).unwrap_or("(global)"),
        by = %token.name,
        "secret set"
    );
    Ok(Json(SecretView::new(&meta, repo.as_ref())))
}

pub async fn list_secrets(
    State(state): State<Arc<AppState>>,
    _writer: Writer,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Json<SecretList>, ApiError> {
    let repo = match &query.repository {
        Some(text) => Some(lookup_repository(&state, text).await?),
        None => None,
    };
    let secrets = state
        .db
        .list_secrets(repo.as_ref().map(|r| &r.id))
        .await
        .map_err(store_error)?;
    Ok(Json(SecretList {
        secrets: secrets
            .iter()
            .map(|meta| SecretView::new(meta, repo.as_ref()))
            .collect(),
    }))
}

pub async fn delete_secret(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<StatusCode, ApiError> {
    let name = normalize_name(&name)?;
    let repo = scope(&state, &query, &token).await?;
    match state
        .db
        .delete_secret(repo.as_ref().map(|r| &r.id), &name)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::NotFound(format!(
                "no secret {name} {}",
                match &repo {
                    Some(r) => format!("in {}", r.name),
                    None => "among the global secrets".to_owned(),
                }
            )));
        }
        Err(e) => return Err(store_error(e)),
    }
    tracing::info!(secret = %name, by = %token.name, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_githubs_rules() {
        assert_eq!(
            normalize_name("deploy_key").ok().as_deref(),
            Some("DEPLOY_KEY")
        );
        assert_eq!(normalize_name("TOKEN2").ok().as_deref(), Some("TOKEN2"));
        assert!(normalize_name("2FA").is_err());
        assert!(normalize_name("github_token").is_err());
        assert!(normalize_name("my-secret").is_err());
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a b").is_err());
    }
}
