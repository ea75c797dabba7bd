//! The agent's HTTP client for `/api/agent/*` (docs/server.md): one method per request, each a
//! single attempt with a timeout and the bearer credential, and an error that says whether
//! trying again can help. [`with_retries`] retries the transient ones with backoff.

use crate::backoff::Backoff;
use crate::config::{AgentConfig, RetryPolicy};
use bytes::Bytes;
use gantry_protocol::agent::{
    ErrorBody, EventsResponse, FinishRequest, HeartbeatRequest, HeartbeatResponse, JobAssignment,
    JobEventsRequest, LogAppendResponse, LogConflict, PollRequest, RegisterRequest,
    RegisterResponse,
};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a request did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused or reset, DNS, timeout, a body cut short.
    #[error("could not reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 5xx, 408 or 429: the server cannot answer now.
    #[error("the server is unavailable ({status}): {message}")]
    Unavailable { status: u16, message: String },
    /// An answer that is not what the protocol says (wrong JSON).
    #[error("the server's answer could not be read: {0}")]
    Decode(String),
    /// 401: the credential (or registration token) is unknown or revoked.
    #[error("the server refused the credential (401): {message}")]
    Unauthorized { message: String },
    /// 410: the lease is not the job's current one.
    #[error("the job's lease is gone (410)")]
    LeaseGone,
    /// 409 with the server's log size.
    #[error("log size mismatch: the server holds {expected_offset} bytes")]
    Conflict { expected_offset: u64 },
    /// Any other 4xx: the request is wrong, and sending it again will not help.
    #[error("the server refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The server URL cannot be used.
    #[error("invalid server URL `{url}`: {message}")]
    InvalidUrl { url: String, message: String },
    /// A retry loop was stopped (shutdown) before it got an answer.
    #[error("stopped before the server answered")]
    Stopped,
}

impl ClientError {
    /// Whether the same request may succeed later: no answer, or the server said so (5xx,
    /// 408, 429). Never a 4xx otherwise.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Transport(_) | ClientError::Unavailable { .. } | ClientError::Decode(_)
        )
    }
}

/// The agent's connection to its server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credential: Option<Arc<str>>,
    request_timeout: Duration,
    poll_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("authenticated", &self.credential.is_some())
            .finish()
    }
}

impl Client {
    /// A client of the server at `config.server_url`, without a credential yet.
    pub fn new(config: &AgentConfig) -> Result<Client, ClientError> {
        let invalid = |message: String| ClientError::InvalidUrl {
            url: config.server_url.clone(),
            message,
        };
        let base = Url::parse(&config.server_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// or https:// URL".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("gantry-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client {
            http,
            base,
            credential: None,
            request_timeout: config.request_timeout,
            poll_timeout: config.poll_timeout,
        })
    }

    /// The same client, sending `credential` as its bearer token.
    pub fn with_credential(mut self, credential: &str) -> Client {
        self.credential = Some(Arc::from(credential));
        self
    }

    /// `POST /api/agent/register` (authenticated by the token in the body).
    pub async fn register(&self, body: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let request = self.http.post(self.url(&["register"])).json(body);
        decode(self.send(request, self.request_timeout).await?).await
    }

    /// `POST /api/agent/poll`: `None` when the server had nothing (204).
    pub async fn poll(&self, body: &PollRequest) -> Result<Option<JobAssignment>, ClientError> {
        let request = self.authed(self.http.post(self.url(&["poll"]))).json(body);
        let response = self.send(request, self.poll_timeout).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(response).await.map(Some)
    }

    /// `POST /api/agent/offline`: the agent is stopping. One try, within `timeout`.
    pub async fn sign_off(&self, timeout: std::time::Duration) -> Result<(), ClientError> {
        let request = self.authed(self.http.post(self.url(&["offline"])));
        self.send(request, timeout).await.map(drop)
    }

    /// `POST /api/agent/jobs/{id}/heartbeat`.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        body: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        let url = self.url(&["jobs", job_id, "heartbeat"]);
        let request = self.authed(self.http.post(url)).json(body);
        decode(self.send(request, self.request_timeout).await?).await
    }

    /// `POST /api/agent/jobs/{id}/logs?lease=L&offset=N` with `bytes` as the body.
    pub async fn append_log(
        &self,
        job_id: &str,
        lease_id: &str,
        offset: u64,
        bytes: Bytes,
    ) -> Result<LogAppendResponse, ClientError> {
        let mut url = self.url(&["jobs", job_id, "logs"]);
        url.query_pairs_mut()
            .append_pair("lease", lease_id)
            .append_pair("offset", &offset.to_string());
        let request = self
            .authed(self.http.post(url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        decode(self.send(request, self.request_timeout).await?).await
    }

    /// `POST /api/agent/jobs/{id}/events`.
    pub async fn send_events(
        &self,
        job_id: &str,
        body: &JobEventsRequest,
    ) -> Result<EventsResponse, ClientError> {
        let url = self.url(&["jobs", job_id, "events"]);
        let request = self.authed(self.http.post(url)).json(body);
        decode(self.send(request, self.request_timeout).await?).await
    }

    /// `POST /api/agent/jobs/{id}/finish`. Any 2xx is the acknowledgement.
    pub async fn finish(&self, job_id: &str, body: &FinishRequest) -> Result<(), ClientError> {
        let url = self.url(&["jobs", job_id, "finish"]);
        let request = self.authed(self.http.post(url)).json(body);
        self.send(request, self.request_timeout).await.map(drop)
    }

    /// `<base>/api/agent/<segments>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "agent"])
                .extend(segments);
        }
        url
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        }
    }

    /// Sends a request and sorts its answer: 2xx is the response, anything else an error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let message = error_message(&body);
        Err(match status.as_u16() {
            401 => ClientError::Unauthorized { message },
            410 => ClientError::LeaseGone,
            409 => match serde_json::from_slice::<LogConflict>(&body) {
                Ok(conflict) => ClientError::Conflict {
                    expected_offset: conflict.expected_offset,
                },
                Err(_) => ClientError::Rejected {
                    status: 409,
                    message,
                },
            },
            code @ (408 | 429 | 500..=599) => ClientError::Unavailable {
                status: code,
                message,
            },
            code => ClientError::Rejected {
                status: code,
                message,
            },
        })
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let body = response.bytes().await.map_err(ClientError::Transport)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The `message` of an [`ErrorBody`], or the start of the body as text.
fn error_message(body: &[u8]) -> String {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        return format!("{}: {}", error.error, error.message);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(no details)".to_owned(),
        None => text.to_owned(),
    }
}

/// Calls `attempt` until it succeeds or fails with an error that is not transient, waiting
/// with exponential backoff and jitter between attempts. Gives up with
/// [`ClientError::Stopped`] when `stop` is cancelled.
pub async fn with_retries<T, F, Fut>(
    policy: RetryPolicy,
    stop: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut backoff = Backoff::new(policy);
    loop {
        let result = tokio::select! {
            result = attempt() => result,
            _ = stop.cancelled() => return Err(ClientError::Stopped),
        };
        match result {
            Err(error) if error.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    "{what} failed (attempt {}), retrying in {} ms: {error}",
                    backoff.failures(),
                    delay.as_millis()
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(ClientError::Stopped),
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        let config = AgentConfig::new(url, "/tmp/s".into(), "/tmp/w".into());
        Client::new(&config).expect("valid url")
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_ids() {
        let c = client("http://ci.example:8080/gantry/");
        assert_eq!(
            c.url(&["jobs", "job_1/../x", "logs"]).as_str(),
            "http://ci.example:8080/gantry/api/agent/jobs/job_1%2F..%2Fx/logs"
        );
        let c = client("http://ci.example");
        assert_eq!(
            c.url(&["poll"]).as_str(),
            "http://ci.example/api/agent/poll"
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let config = AgentConfig::new("ftp://x", "/tmp/s".into(), "/tmp/w".into());
        assert!(matches!(
            Client::new(&config),
            Err(ClientError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            error_message(br#"{"error":"lease_gone","message":"the job moved"}"#),
            "lease_gone: the job moved"
        );
        assert_eq!(error_message(b""), "(no details)");
        assert_eq!(error_message(&[b'x'; 300]).chars().count(), 201);
    }

    #[test]
    fn only_unanswered_and_server_errors_are_transient() {
        let unavailable = ClientError::Unavailable {
            status: 503,
            message: String::new(),
        };
        assert!(unavailable.is_transient());
        assert!(ClientError::Decode(String::new()).is_transient());
        assert!(!ClientError::LeaseGone.is_transient());
        assert!(!ClientError::Conflict { expected_offset: 0 }.is_transient());
        let rejected = ClientError::Rejected {
            status: 400,
            message: String::new(),
        };
        assert!(!rejected.is_transient());
    }
}
