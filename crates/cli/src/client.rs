//! The HTTP client of the commands that talk to a Gantry server (`gantry runs`, `logs`,
//! `cancel`...): the `--server`/`--token` flags they share, requests to `/api/v1` with the
//! server's refusals turned into messages that say what to do, and the table and time formats
//! their output shares. A failed request is exit 1; a usage mistake found before any request
//! is exit 2.

use crate::exit::CommandError;
use anyhow::{Context as _, anyhow};
use clap::Args;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;

/// Where the server is and who is asking.
#[derive(Clone, Debug, Args)]
pub struct ServerArgs {
    /// The Gantry server's URL.
    #[arg(
        long,
        global = true,
        env = "GANTRY_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// An API token (`gantry server` prints an admin token at its first start; more with
    /// `gantry token create`).
    #[arg(
        long,
        global = true,
        env = "GANTRY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// A client for one server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(args: &ServerArgs) -> Result<Client, CommandError> {
        let base = args.server.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CommandError::Usage(anyhow!(
                "--server {base:?} is not an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("could not build the HTTP client")
            .map_err(CommandError::Internal)?;
        Ok(Client {
            http,
            base,
            token: args.token.clone().filter(|t| !t.trim().is_empty()),
        })
    }

    /// The server's base URL (without a trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`), with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request; a refusal becomes an error that says what to do.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.network_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    /// The error for a request that got no answer.
    pub fn network_error(&self, error: reqwest::Error) -> anyhow::Error {
        if error.is_connect() || error.is_timeout() {
            anyhow!(
                "could not reach the Gantry server at {}: {}\n  Is `gantry server` running \
                 there? Pass --server URL or set GANTRY_SERVER.",
                self.base,
                root_cause(&error)
            )
        } else {
            anyhow!(
                "the request to {} failed: {}",
                self.base,
                root_cause(&error)
            )
        }
    }

    /// The error for a non-2xx answer: the server's message, with a hint for 401.
    pub async fn refusal(&self, response: Response) -> anyhow::Error {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned());
        match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => anyhow!(
                "the server needs an API token for this: pass --token or set GANTRY_TOKEN \
                 (`gantry server` prints an admin token at its first start; an admin creates \
                 more with `gantry token create`)"
            ),
            StatusCode::UNAUTHORIZED => anyhow!(
                "the server refused the token (deleted, or mistyped): pass a valid one with \
                 --token or GANTRY_TOKEN"
            ),
            StatusCode::FORBIDDEN => anyhow!("{message}"),
            _ if message.is_empty() => anyhow!("the server answered {status}"),
            _ => anyhow!("{message} ({status})"),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    /// `GET path?query`.
    pub async fn get_query<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path).query(query))
            .await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    /// Sends a request and reads its JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(request).await?;
        let text = response
            .text()
            .await
            .map_err(|e| anyhow!("the answer from {} was cut off: {e}", self.base))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "the server at {} answered something that is not what this gantry expects \
                 (is it a Gantry server of the same version?)",
                self.base
            )
        })
    }

    /// Sends a request whose answer has no body worth reading (204).
    pub async fn empty(&self, request: RequestBuilder) -> anyhow::Result<()> {
        self.send(request).await.map(drop)
    }
}

/// The innermost cause of an error (reqwest's own message is only "error sending request").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Runs a command's async body on a small runtime; its errors are failed requests (exit 1).
pub fn block_on<T>(body: impl Future<Output = anyhow::Result<T>>) -> Result<T, CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(CommandError::Internal)?;
    runtime.block_on(body).map_err(CommandError::Internal)
}

/// Prints a value as indented JSON (`--json`).
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("could not write JSON")?;
    println!("{text}");
    Ok(())
}

/// A table without borders, whose columns are as wide as their widest cell (plain text
/// cells; colour codes would break the widths).
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// A table's text, without trailing spaces.
pub fn render_table(table: &comfy_table::Table) -> String {
    table
        .lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// Prints a table without trailing spaces.
pub fn print_table(table: &comfy_table::Table) {
    print!("{}", render_table(table));
}

/// `3s`, `4m 05s`, `2h 10m`, `3d 4h`.
pub fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// How long ago `at_ms` was, from `now_ms`: `just now`, `5m ago`...
pub fn format_age(at_ms: i64, now_ms: i64) -> String {
    let ms = now_ms - at_ms;
    if ms < 1000 {
        "just now".to_owned()
    } else {
        format!(
            "{} ago",
            format_duration(ms).split(' ').next().unwrap_or("")
        )
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `main` for `refs/heads/main`, `v1` for `refs/tags/v1`, `pull/3` for `refs/pull/3/merge`.
pub fn short_ref(git_ref: &str) -> String {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        branch.to_owned()
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        tag.to_owned()
    } else if let Some(pull) = git_ref.strip_prefix("refs/pull/") {
        format!("pull/{}", pull.split('/').next().unwrap_or(pull))
    } else {
        git_ref.to_owned()
    }
}

/// What a run or job shows as its state: the conclusion once completed, else the status.
pub fn state_word(status: &str, conclusion: Option<&str>) -> String {
    match conclusion {
        Some(conclusion) if status == "completed" => conclusion.to_owned(),
        _ => status.replace('_', " "),
    }
}

/// A repository for a path: ids as they are, names (`owner/repo`) looked up.
pub async fn repository_id(client: &Client, repo: &str) -> anyhow::Result<String> {
    if repo.starts_with("repo_") {
        return Ok(repo.to_owned());
    }
    #[derive(serde::Deserialize)]
    struct List {
        repositories: Vec<Repo>,
    }
    #[derive(serde::Deserialize)]
    struct Repo {
        id: String,
    }
    let list: List = client
        .get_query("/api/v1/repositories", &[("name", repo)])
        .await?;
    list.repositories
        .into_iter()
        .next()
        .map(|r| r.id)
        .ok_or_else(|| {
            anyhow!(
                "no repository {repo:?} on {} (see `gantry repo list`)",
                client.base()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages_read_naturally() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(59_999), "59s");
        assert_eq!(format_duration(65_000), "1m 05s");
        assert_eq!(format_duration(2 * 3_600_000 + 600_000), "2h 10m");
        assert_eq!(format_duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(format_age(1_000, 1_500), "just now");
        assert_eq!(format_age(0, 300_000), "5m ago");
    }

    #[test]
    fn refs_are_shortened() {
        assert_eq!(short_ref("refs/heads/main"), "main");
        assert_eq!(short_ref("refs/heads/feat/x"), "feat/x");
        assert_eq!(short_ref("refs/tags/v1.2"), "v1.2");
        assert_eq!(short_ref("refs/pull/12/merge"), "pull/12");
        assert_eq!(short_ref(""), "");
    }

    #[test]
    fn server_urls_must_be_http() {
        let args = |server: &str| ServerArgs {
            server: server.to_owned(),
            token: None,
        };
        assert!(Client::new(&args("http://127.0.0.1:8080/")).is_ok());
        assert!(matches!(
            Client::new(&args("127.0.0.1:8080")),
            Err(CommandError::Usage(_))
        ));
    }
}
