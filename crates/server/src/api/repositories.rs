//! `/api/v1/repositories`: the repositories Gantry builds. Registering, changing and removing
//! one needs `admin`; reading needs `read`. The webhook secret and the status token are sealed
//! with the key ring (associated data: the repository id and the column) before they reach the
//! store, and answers only say whether each is set.

use super::auth::{Admin, ApiJson, ApiQuery, Reader};
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::forge::Forge;
use crate::secret::repository_field_aad;
use crate::store::{NewRepository, Repository, RepositoryId, RepositoryUpdate, StoreError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

/// A repository as the API shows it: never a secret, only whether one is set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepositoryView {
    pub id: String,
    pub name: String,
    pub clone_url: String,
    pub forge: String,
    pub has_webhook_secret: bool,
    pub allow_unsigned: bool,
    pub status_url: Option<String>,
    pub has_status_token: bool,
    pub created_ms: i64,
    /// Where the forge must send its webhooks.
    pub webhook_url: String,
}

impl RepositoryView {
    pub fn new(repo: &Repository, public_url: &str) -> RepositoryView {
        let hook = match repo.forge {
            Forge::GitHub => "github",
            Forge::Gitea => "gitea",
            Forge::GitLab => "gitlab",
        };
        RepositoryView {
            id: repo.id.to_string(),
            name: repo.name.clone(),
            clone_url: repo.clone_url.clone(),
            forge: repo.forge.as_str().to_owned(),
            has_webhook_secret: repo.webhook_secret.is_some(),
            allow_unsigned: repo.allow_unsigned,
            status_url: repo.status_url.clone(),
            has_status_token: repo.status_token.is_some(),
            created_ms: repo.created_ms,
            webhook_url: format!("{}/hooks/{hook}", public_url.trim_end_matches('/')),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryView>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only the repository with this exact name.
    pub name: Option<String>,
}

/// `POST /api/v1/repositories`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRepository {
    pub clone_url: String,
    /// `owner/repo`; derived from the clone URL when absent.
    pub name: Option<String>,
    /// `github` (default), `gitea`/`forgejo` or `gitlab`.
    pub forge: Option<String>,
    pub webhook_secret: Option<String>,
    #[serde(default)]
    pub allow_unsigned: bool,
    pub status_url: Option<String>,
    pub status_token: Option<String>,
}

/// `PATCH /api/v1/repositories/{id}`: absent fields stay; `null` clears a nullable one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepository {
    pub clone_url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub webhook_secret: Option<Option<String>>,
    pub allow_unsigned: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub status_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub status_token: Option<Option<String>>,
}

/// A field that is absent (`None`), `null` (`Some(None)`) or set (`Some(Some(v))`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The repository an id (`repo_…`) or a name (`owner/repo`) designates; 404 when none does.
pub async fn lookup_repository(state: &AppState, text: &str) -> Result<Repository, ApiError> {
    let found = if text.starts_with(RepositoryId::PREFIX) {
        state
            .db
            .find_repository(&RepositoryId::from(text))
            .await
            .map_err(store_error)?
    } else {
        state
            .db
            .find_repository_by_name(text)
            .await
            .map_err(store_error)?
    };
    found.ok_or_else(|| ApiError::NotFound(format!("repository {text} not found")))
}

pub async fn list_repositories(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<RepositoryList>, ApiError> {
    let repositories = match &query.name {
        Some(name) => state
            .db
            .find_repository_by_name(name)
            .await
            .map_err(store_error)?
            .into_iter()
            .collect(),
        None => state.db.list_repositories().await.map_err(store_error)?,
    };
    Ok(Json(RepositoryList {
        repositories: repositories
            .iter()
            .map(|r| RepositoryView::new(r, &state.config.public_url))
            .collect(),
    }))
}

pub async fn get_repository(
    State(state): State<Arc<AppState>>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<RepositoryView>, ApiError> {
    let repo = lookup_repository(&state, &id).await?;
    Ok(Json(RepositoryView::new(&repo, &state.config.public_url)))
}

pub async fn create_repository(
    State(state): State<Arc<AppState>>,
    Admin(token): Admin,
    ApiJson(body): ApiJson<CreateRepository>,
) -> Result<(StatusCode, Json<RepositoryView>), ApiError> {
    let clone_url = body.clone_url.trim().to_owned();
    check_clone_url(&clone_url)?;
    let name = match &body.name {
        Some(name) => name.trim().to_owned(),
        None => name_from_clone_url(&clone_url).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cannot tell the repository's name from {clone_url:?}: pass name (owner/repo)"
            ))
        })?,
    };
    check_name(&name)?;
    let forge = match &body.forge {
        Some(text) => text
            .parse::<Forge>()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => Forge::GitHub,
    };
    let status_url = body
        .status_url
        .as_deref()
        .map(check_status_url)
        .transpose()?;
    let id = RepositoryId::generate();
    let seal = |column: &str, value: &Option<String>| -> Result<Option<Vec<u8>>, ApiError> {
        match value {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(ApiError::BadRequest(format!(
                "{column} is empty: leave it out instead"
            ))),
            Some(v) => Ok(Some(
                state
                    .keys
                    .seal(&repository_field_aad(id.as_str(), column), v.as_bytes()),
            )),
        }
    };
    let new = NewRepository {
        name: name.clone(),
        clone_url,
        forge,
        webhook_secret: seal("webhook_secret", &body.webhook_secret)?,
        allow_unsigned: body.allow_unsigned,
        status_url,
        status_token: seal("status_token", &body.status_token)?,
    };
    let repo = match state
        .db
        .insert_repository_with_id(&id, &new, now_ms())
        .await
    {
        Ok(repo) => repo,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "a repository named {name} is registered already"
            )));
        }
        Err(e) => return Err(store_error(e)),
    };
    tracing::info!(repository = %repo.name, id = %repo.id, by = %token.name, "repository registered");
    Ok((
        StatusCode::CREATED,
        Json(RepositoryView::new(&repo, &state.config.public_url)),
    ))
}

pub async fn update_repository(
    State(state): State<Arc<AppState>>,
    Admin(token): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateRepository>,
) -> Result<Json<RepositoryView>, ApiError> {
    let repo = lookup_repository(&state, &id).await?;
    let seal = |column: &str,
                value: &Option<Option<String>>|
     -> Result<Option<Option<Vec<u8>>>, ApiError> {
        match value {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(v)) if v.is_empty() => Err(ApiError::BadRequest(format!(
                "{column} is empty: send null to remove it"
            ))),
            Some(Some(v)) => Ok(Some(Some(state.keys.seal(
                &repository_field_aad(repo.id.as_str(), column),
                v.as_bytes(),
            )))),
        }
    };
    let clone_url = match &body.clone_url {
        Some(url) => {
            let url = url.trim().to_owned();
            check_clone_url(&url)?;
            Some(url)
        }
        None => None,
    };
    let status_url = match &body.status_url {
        Some(Some(url)) => Some(Some(check_status_url(url)?)),
        Some(None) => Some(None),
        None => None,
    };
    let update = RepositoryUpdate {
        clone_url,
        webhook_secret: seal("webhook_secret", &body.webhook_secret)?,
        allow_unsigned: body.allow_unsigned,
        status_url,
        status_token: seal("status_token", &body.status_token)?,
    };
    let updated = state
        .db
        .update_repository(&repo.id, &update)
        .await
        .map_err(store_error)?;
    tracing::info!(repository = %updated.name, by = %token.name, "repository updated");
    Ok(Json(RepositoryView::new(
        &updated,
        &state.config.public_url,
    )))
}

pub async fn delete_repository(
    State(state): State<Arc<AppState>>,
    Admin(token): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let repo = lookup_repository(&state, &id).await?;
    state
        .db
        .delete_repository(&repo.id)
        .await
        .map_err(store_error)?;
    tracing::info!(repository = %repo.name, by = %token.name, "repository deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A clone URL git may be given: no option look-alike, no whitespace, no `transport::` helper.
fn check_clone_url(url: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::BadRequest(format!("clone_url {url:?} {why}")));
    if url.is_empty() {
        return bad("is empty");
    }
    if url.starts_with('-') {
        return bad("must not start with `-`");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    if let Some((transport, _)) = url.split_once("::")
        && !transport.contains('/')
    {
        return bad("uses a remote helper (`transport::`), which is not allowed");
    }
    Ok(())
}

/// `owner/repo` (GitLab: `group/subgroup/project`).
fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = name.contains('/')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.split('/').any(|part| part == "." || part == "..")
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name:?} is not a repository name: expected owner/repo, as the forge names it"
        )))
    }
}

/// The API base for commit statuses: an http(s) URL, without a trailing slash.
fn check_status_url(url: &str) -> Result<String, ApiError> {
    let url = url.trim().trim_end_matches('/');
    if (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Ok(url.to_owned())
    } else {
        Err(ApiError::BadRequest(format!(
            "status_url {url:?} is not an http(s) URL (for GitHub: https://api.github.com)"
        )))
    }
}

/// `owner/repo` from a clone URL: the path of an URL or of `user@host:path`, or the last two
/// parts of a local path; without `.git`.
pub fn name_from_clone_url(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    let path = if let Some((scheme, rest)) = trimmed.split_once("://") {
        if scheme == "file" {
            last_two(rest)?
        } else {
            rest.split_once('/')?.1.to_owned()
        }
    } else if let Some((host, path)) = trimmed.split_once(':')
        && !host.contains('/')
    {
        path.trim_start_matches('/').to_owned()
    } else {
        last_two(trimmed)?
    };
    let path = path.trim_matches('/').to_owned();
    (path.contains('/') && !path.is_empty()).then_some(path)
}

fn last_two(path: &str) -> Option<String> {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let repo = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_clone_urls() {
        let check = |url: &str, expected: Option<&str>| {
            assert_eq!(name_from_clone_url(url).as_deref(), expected, "{url}");
        };
        check("https://github.com/acme/widgets.git", Some("acme/widgets"));
        check("https://github.com/acme/widgets", Some("acme/widgets"));
        check(
            "https://gitlab.example.com/group/sub/project.git",
            Some("group/sub/project"),
        );
        check("git@github.com:acme/widgets.git", Some("acme/widgets"));
        check("ssh://git@host:2222/acme/widgets.git", Some("acme/widgets"));
        check("/srv/git/acme/widgets.git", Some("acme/widgets"));
        check("file:///srv/git/acme/widgets", Some("acme/widgets"));
        check("https://github.com/widgets", None);
    }

    #[test]
    fn clone_urls_that_git_could_misread_are_refused() {
        assert!(check_clone_url("https://github.com/a/b.git").is_ok());
        assert!(check_clone_url("git@github.com:a/b.git").is_ok());
        assert!(check_clone_url("/srv/git/a/b").is_ok());
        assert!(check_clone_url("--upload-pack=touch /tmp/x").is_err());
        assert!(check_clone_url("ext::sh -c touch% /tmp/pwned").is_err());
        assert!(check_clone_url("https://x/a b").is_err());
        assert!(check_clone_url("").is_err());
    }

    #[test]
    fn repository_names_need_an_owner() {
        assert!(check_name("acme/widgets").is_ok());
        assert!(check_name("group/sub/project").is_ok());
        assert!(check_name("widgets").is_err());
        assert!(check_name("acme/../x").is_err());
        assert!(check_name("/acme/x").is_err());
    }
}
