//! Forges: webhook authentication and payload normalisation (pure functions), and commit
//! status clients.
//!
//! A delivery goes through, in order:
//! 1. [`read_delivery`]: its event name and delivery id from the headers;
//! 2. [`repository_name`]: which repository it is for (to look up the secret);
//! 3. [`verify_signature`]: the HMAC (or GitLab token) over the *raw* body, in constant time;
//! 4. [`parse_webhook`]: the body to a [`ForgeEvent`], the same shape for GitHub, Gitea/Forgejo
//!    and GitLab; then [`ForgeEvent::to_trigger_event`] for the planner and
//!    [`ForgeEvent::github_payload`] for `github.event`.
//!
//! Nothing here does I/O except [`status`], and nothing limits sizes: the HTTP handler caps
//! the body before calling in. No function panics on any input.

mod delivery;
mod event;
mod github;
mod gitlab;
mod payload;
mod signature;
pub mod status;

pub use delivery::{DeliveryInfo, HeaderError, body_id, read_delivery};
pub use event::{
    EventKind, Forge, ForgeEvent, PullRequest, PullRequestBase, PullRequestHead, Push,
    RepoIdentity, UnknownForge,
};
pub use payload::PayloadError;
pub use signature::{
    FORGEJO_SIGNATURE_HEADER, GITEA_SIGNATURE_HEADER, GITHUB_SHA1_SIGNATURE_HEADER,
    GITHUB_SIGNATURE_HEADER, GITLAB_TOKEN_HEADER, SignatureError, verify_gitea_signature,
    verify_github_signature, verify_gitlab_token, verify_signature,
};

use serde::Deserialize;
use serde_json::Value;

/// Parses a webhook body sent by `forge` with the event header `event_header` (GitHub
/// `X-GitHub-Event`, Gitea `X-Gitea-Event`, GitLab `X-Gitlab-Event`).
///
/// Ping, push, tag push and pull/merge request events are normalised; any other event is
/// [`EventKind::Other`] (stored, not planned). Malformed JSON or a missing or mistyped field
/// is a [`PayloadError`] naming the field.
pub fn parse_webhook(
    forge: Forge,
    event_header: &str,
    body: &[u8],
) -> Result<ForgeEvent, PayloadError> {
    let raw = payload::parse_body(body)?;
    parse_webhook_value(forge, event_header, &raw)
}

/// [`parse_webhook`] for a body already parsed as JSON (the caller keeps the value for
/// [`ForgeEvent::github_payload`]).
pub fn parse_webhook_value(
    forge: Forge,
    event_header: &str,
    raw: &Value,
) -> Result<ForgeEvent, PayloadError> {
    match forge {
        Forge::GitHub | Forge::Gitea => github::parse(forge, event_header, raw),
        Forge::GitLab => gitlab::parse(event_header, raw),
    }
}

/// The repository a delivery names (`owner/repo`; GitLab `path_with_namespace`), read without
/// building the whole event, so the handler can find the secret to verify the delivery with.
pub fn repository_name(forge: Forge, body: &[u8]) -> Result<String, PayloadError> {
    #[derive(Deserialize)]
    struct GitHubBody {
        repository: Option<GitHubRepo>,
    }
    #[derive(Deserialize)]
    struct GitHubRepo {
        full_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct GitLabBody {
        project: Option<GitLabProject>,
    }
    #[derive(Deserialize)]
    struct GitLabProject {
        path_with_namespace: Option<String>,
    }
    let not_json = |source| PayloadError::NotJson { source, hint: "" };
    let missing = |field: &str| PayloadError::MissingField {
        field: field.to_owned(),
    };
    match forge {
        Forge::GitHub | Forge::Gitea => {
            let body: GitHubBody = serde_json::from_slice(body).map_err(not_json)?;
            body.repository
                .and_then(|r| r.full_name)
                .ok_or_else(|| missing("repository.full_name"))
        }
        Forge::GitLab => {
            let body: GitLabBody = serde_json::from_slice(body).map_err(not_json)?;
            body.project
                .and_then(|p| p.path_with_namespace)
                .ok_or_else(|| missing("project.path_with_namespace"))
        }
    }
}
