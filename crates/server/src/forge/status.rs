//! Commit statuses: tells the forge how a run is going, so pull requests show Gantry's checks.
//!
//! One [`StatusClient`] per repository (forge, API base URL, token); clones share the HTTP
//! connection pool. The endpoints:
//! - GitHub and GitHub Enterprise: `POST {base}/repos/{owner}/{repo}/statuses/{sha}` with base
//!   `https://api.github.com` or `https://ghe.example/api/v3`;
//! - Gitea/Forgejo: `POST {base}/api/v1/repos/{owner}/{repo}/statuses/{sha}` with base the
//!   instance URL;
//! - GitLab: `POST {base}/api/v4/projects/{url-encoded path}/statuses/{sha}` with base the
//!   instance URL.
//!
//! (A base that already ends in `/api/v1` or `/api/v4` is taken as it is.)
//!
//! [`send`](StatusClient::send) makes one attempt; the caller (the status outbox) retries
//! when [`StatusError::is_retryable`] says so: timeouts, connection failures, 5xx and rate
//! limits. Any other 4xx is permanent and the error says what the forge objected to.

use super::event::Forge;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// The `User-Agent` Gantry sends (GitHub refuses requests without one).
pub const STATUS_USER_AGENT: &str = concat!("gantry/", env!("CARGO_PKG_VERSION"));
/// Whole-request timeout used by [`StatusClient::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection timeout used by [`StatusClient::new`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// GitHub refuses descriptions longer than this many characters.
const MAX_DESCRIPTION_CHARS: usize = 140;
/// How much of an error response body is kept in the error.
const MAX_ERROR_BODY: usize = 300;

/// The state of a status, in Gantry's terms; each forge gets its own word for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitState {
    /// Queued. GitHub/Gitea `pending`, GitLab `pending`.
    Pending,
    /// Started. GitHub/Gitea `pending` (they have no running state), GitLab `running`.
    Running,
    Success,
    /// The run failed. GitHub/Gitea `failure`, GitLab `failed`.
    Failure,
    /// Gantry could not run it. GitHub/Gitea `error`, GitLab `failed`.
    Error,
    /// Cancelled. GitHub/Gitea `error` (they have no cancelled state), GitLab `canceled`.
    Canceled,
}

impl CommitState {
    /// The state as `forge` names it.
    pub fn as_forge_str(self, forge: Forge) -> &'static str {
        match (forge, self) {
            (Forge::GitLab, CommitState::Pending) => "pending",
            (Forge::GitLab, CommitState::Running) => "running",
            (Forge::GitLab, CommitState::Success) => "success",
            (Forge::GitLab, CommitState::Failure | CommitState::Error) => "failed",
            (Forge::GitLab, CommitState::Canceled) => "canceled",
            (_, CommitState::Pending | CommitState::Running) => "pending",
            (_, CommitState::Success) => "success",
            (_, CommitState::Failure) => "failure",
            (_, CommitState::Error | CommitState::Canceled) => "error",
        }
    }
}

/// One status to set on one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// `owner/repo`; for GitLab the project path (`group/subgroup/project`).
    pub repo: String,
    /// The commit (40 or 64 hex digits).
    pub sha: String,
    pub state: CommitState,
    /// The check's name (`gantry/ci.yml/test`); GitLab calls it `name`.
    pub context: String,
    /// A short text; cut to 140 characters.
    pub description: Option<String>,
    /// The run's page in Gantry.
    pub target_url: Option<String>,
}

/// Why a status was not set.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("the status update is invalid: {0}")]
    InvalidUpdate(String),
    #[error("the forge API base URL {url:?} is invalid: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("the status token cannot be sent in an HTTP header (it contains control characters)")]
    InvalidToken,
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the forge did not answer in time")]
    Timeout(#[source] reqwest::Error),
    #[error("could not reach the forge: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("the forge answered {status} (a server error; retry later){}", body_suffix(.body))]
    Server { status: u16, body: String },
    #[error("the forge is rate limiting Gantry ({status}){}", retry_suffix(.retry_after))]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the forge refused the status with {status}: {reason}{}", body_suffix(.body))]
    Rejected {
        status: u16,
        reason: &'static str,
        body: String,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn retry_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("; retry after {} s", after.as_secs()),
        None => String::new(),
    }
}

impl StatusError {
    /// Whether sending the same update again later may succeed: timeouts, connection
    /// failures, server errors and rate limits. Everything else needs a person (a wrong token,
    /// a missing repository, a bad URL).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StatusError::Timeout(_)
                | StatusError::Transport(_)
                | StatusError::Server { .. }
                | StatusError::RateLimited { .. }
        )
    }

    /// How long the forge asked to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StatusError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status the forge answered, when it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            StatusError::Server { status, .. }
            | StatusError::RateLimited { status, .. }
            | StatusError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends commit statuses to one forge with one token.
#[derive(Clone)]
pub struct StatusClient {
    http: reqwest::Client,
    forge: Forge,
    base: Url,
    token: String,
}

impl fmt::Debug for StatusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusClient")
            .field("forge", &self.forge)
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

/// An HTTP client suited to status calls: timeouts, Gantry's user agent, no redirects (a
/// redirected POST would be replayed as a GET).
pub fn http_client(
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, StatusError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(STATUS_USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(StatusError::Client)
}

impl StatusClient {
    /// A client with its own connection pool and the default timeouts (30 s per request,
    /// 10 s to connect).
    pub fn new(forge: Forge, base_url: &str, token: &str) -> Result<Self, StatusError> {
        let http = http_client(DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)?;
        Self::with_http_client(http, forge, base_url, token)
    }

    /// A client that shares `http` (build it with [`http_client`] for the timeouts and the
    /// redirect policy).
    pub fn with_http_client(
        http: reqwest::Client,
        forge: Forge,
        base_url: &str,
        token: &str,
    ) -> Result<Self, StatusError> {
        let invalid = |reason: &str| StatusError::InvalidBaseUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
            return Err(invalid(
                "expected a URL like https://host or https://host/api/v3",
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid("credentials belong in the token, not in the URL"));
        }
        // Checked now so `send` cannot fail on it.
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| StatusError::InvalidToken)?;
        Ok(StatusClient {
            http,
            forge,
            base,
            token: token.to_owned(),
        })
    }

    pub fn forge(&self) -> Forge {
        self.forge
    }

    /// The URL a status for `repo` at `sha` is posted to.
    pub fn status_url(&self, repo: &str, sha: &str) -> Result<Url, StatusError> {
        check_sha(sha)?;
        let segments = repo.split('/').collect::<Vec<_>>();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(StatusError::InvalidUpdate(format!(
                "{repo:?} is not a repository path (owner/repo)"
            )));
        }
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| StatusError::InvalidBaseUrl {
                    url: self.base.to_string(),
                    reason: "it cannot have a path".into(),
                })?;
            path.pop_if_empty();
            match self.forge {
                Forge::GitHub => {
                    let [owner, name] = segments[..] else {
                        return Err(StatusError::InvalidUpdate(format!(
                            "{repo:?} is not owner/repo"
                        )));
                    };
                    path.extend(["repos", owner, name, "statuses", sha]);
                }
                Forge::Gitea => {
                    let [owner, name] = segments[..] else {
                        return Err(StatusError::InvalidUpdate(format!(
                            "{repo:?} is not owner/repo"
                        )));
                    };
                    if !base_path.ends_with("/api/v1") {
                        path.extend(["api", "v1"]);
                    }
                    path.extend(["repos", owner, name, "statuses", sha]);
                }
                Forge::GitLab => {
                    if !base_path.ends_with("/api/v4") {
                        path.extend(["api", "v4"]);
                    }
                    // One segment: the `/`s of the path are percent-encoded.
                    path.extend(["projects", repo, "statuses", sha]);
                }
            }
        }
        Ok(url)
    }

    /// The JSON body for `update`.
    pub fn status_body(&self, update: &StatusUpdate) -> Value {
        let description = update
            .description
            .as_deref()
            .map(|d| d.chars().take(MAX_DESCRIPTION_CHARS).collect::<String>());
        let state = update.state.as_forge_str(self.forge);
        let mut body = match self.forge {
            Forge::GitHub | Forge::Gitea => json!({ "state": state, "context": update.context }),
            Forge::GitLab => json!({ "state": state, "name": update.context }),
        };
        if let Some(object) = body.as_object_mut() {
            if let Some(description) = description {
                object.insert("description".into(), json!(description));
            }
            if let Some(target_url) = &update.target_url {
                object.insert("target_url".into(), json!(target_url));
            }
        }
        body
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let (authorization, accept) = match self.forge {
            Forge::GitHub => (
                format!("Bearer {}", self.token),
                "application/vnd.github+json",
            ),
            Forge::Gitea => (format!("token {}", self.token), "application/json"),
            Forge::GitLab => (format!("Bearer {}", self.token), "application/json"),
        };
        if let Ok(mut value) = HeaderValue::from_str(&authorization) {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        headers.insert(USER_AGENT, HeaderValue::from_static(STATUS_USER_AGENT));
        if self.forge == Forge::GitHub {
            headers.insert(
                "X-GitHub-Api-Version",
                HeaderValue::from_static("2022-11-28"),
            );
        }
        headers
    }

    /// Sets one status (one attempt).
    pub async fn send(&self, update: &StatusUpdate) -> Result<(), StatusError> {
        if update.context.trim().is_empty() {
            return Err(StatusError::InvalidUpdate("the context is empty".into()));
        }
        let url = self.status_url(&update.repo, &update.sha)?;
        let response = self
            .http
            .post(url)
            .headers(self.headers())
            .json(&self.status_body(update))
            .send()
            .await
            .map_err(classify_transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && (response.headers().contains_key(RETRY_AFTER)
                    || response
                        .headers()
                        .get("x-ratelimit-remaining")
                        .is_some_and(|v| v.as_bytes() == b"0")));
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = error_body(response).await;
        Err(classify_status(status, rate_limited, retry_after, body))
    }
}

fn check_sha(sha: &str) -> Result<(), StatusError> {
    if (sha.len() == 40 || sha.len() == 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StatusError::InvalidUpdate(format!(
            "{:?} is not a commit id (40 or 64 hex digits)",
            sha.chars().take(80).collect::<String>()
        )))
    }
}

fn classify_transport(error: reqwest::Error) -> StatusError {
    if error.is_timeout() {
        StatusError::Timeout(error)
    } else if error.is_builder() {
        StatusError::Client(error)
    } else {
        StatusError::Transport(error)
    }
}

/// The start of an error response, on one line, for the log.
async fn error_body(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY * 4)]);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_BODY)
        .collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.trim().to_owned()
}

fn classify_status(
    status: StatusCode,
    rate_limited: bool,
    retry_after: Option<Duration>,
    body: String,
) -> StatusError {
    let code = status.as_u16();
    if rate_limited {
        return StatusError::RateLimited {
            status: code,
            retry_after,
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return StatusError::Server { status: code, body };
    }
    let reason = match code {
        300..=399 => "the API base URL redirects elsewhere; configure the final URL",
        400 => {
            "the request was refused as invalid (GitLab refuses some state changes, e.g. running after success)"
        }
        401 => "the token is missing, invalid or expired",
        403 => "the token lacks permission to set commit statuses on this repository",
        404 => "the repository or commit was not found, or the token cannot see the repository",
        422 => {
            "the forge could not process the status (unknown commit, or too many statuses for this context)"
        }
        _ => "the forge refused the request",
    };
    StatusError::Rejected {
        status: code,
        reason,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(forge: Forge, base: &str) -> StatusClient {
        StatusClient::new(forge, base, "t0ken").expect("valid client")
    }

    #[test]
    fn urls_per_forge() {
        let sha = "a".repeat(40);
        let cases = [
            (
                Forge::GitHub,
                "https://api.github.com",
                "o/r",
                format!("https://api.github.com/repos/o/r/statuses/{sha}"),
            ),
            (
                Forge::GitHub,
                "https://ghe.example/api/v3/",
                "o/r",
                format!("https://ghe.example/api/v3/repos/o/r/statuses/{sha}"),
            ),
            (
                Forge::Gitea,
                "https://gitea.example",
                "o/r",
                format!("https://gitea.example/api/v1/repos/o/r/statuses/{sha}"),
            ),
            (
                Forge::Gitea,
                "https://x.example/git/api/v1",
                "o/r",
                format!("https://x.example/git/api/v1/repos/o/r/statuses/{sha}"),
            ),
            (
                Forge::GitLab,
                "https://gitlab.example",
                "g/sub/p",
                format!("https://gitlab.example/api/v4/projects/g%2Fsub%2Fp/statuses/{sha}"),
            ),
        ];
        for (forge, base, repo, expected) in cases {
            let url = client(forge, base).status_url(repo, &sha).expect("valid");
            assert_eq!(url.as_str(), expected);
        }
    }

    #[test]
    fn hostile_repository_and_sha_are_refused() {
        let c = client(Forge::GitHub, "https://api.github.com");
        let sha = "a".repeat(40);
        for repo in ["o/r/x", "o", "../r", "o/..", "/r"] {
            assert!(
                matches!(c.status_url(repo, &sha), Err(StatusError::InvalidUpdate(_))),
                "{repo}"
            );
        }
        assert!(matches!(
            c.status_url("o/r", "../../admin"),
            Err(StatusError::InvalidUpdate(_))
        ));
    }

    #[test]
    fn base_urls_are_checked() {
        for base in [
            "ftp://x",
            "not a url",
            "https://user:pw@x",
            "https://x/?q=1",
        ] {
            assert!(
                matches!(
                    StatusClient::new(Forge::GitHub, base, "t"),
                    Err(StatusError::InvalidBaseUrl { .. })
                ),
                "{base}"
            );
        }
        assert!(matches!(
            StatusClient::new(Forge::GitHub, "https://x", "t\nX-Evil: 1"),
            Err(StatusError::InvalidToken)
        ));
    }

    #[test]
    fn states_per_forge() {
        use CommitState::*;
        let github: Vec<_> = [Pending, Running, Success, Failure, Error, Canceled]
            .iter()
            .map(|s| s.as_forge_str(Forge::GitHub))
            .collect();
        assert_eq!(
            github,
            ["pending", "pending", "success", "failure", "error", "error"]
        );
        let gitlab: Vec<_> = [Pending, Running, Success, Failure, Error, Canceled]
            .iter()
            .map(|s| s.as_forge_str(Forge::GitLab))
            .collect();
        assert_eq!(
            gitlab,
            [
                "pending", "running", "success", "failed", "failed", "canceled"
            ]
        );
    }

    #[test]
    fn description_is_cut_to_140_characters() {
        let c = client(Forge::GitHub, "https://api.github.com");
        let body = c.status_body(&StatusUpdate {
            repo: "o/r".into(),
            sha: "a".repeat(40),
            state: CommitState::Success,
            context: "gantry".into(),
            description: Some("é".repeat(200)),
            target_url: None,
        });
        assert_eq!(
            body["description"].as_str().map(|d| d.chars().count()),
            Some(140)
        );
        assert!(body.get("target_url").is_none());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = client(Forge::GitLab, "https://gitlab.example");
        assert!(!format!("{c:?}").contains("t0ken"));
    }
}
