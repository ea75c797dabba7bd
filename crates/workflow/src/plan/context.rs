//! What the planner knows about a run before it starts: the event, the commit, the repository,
//! the run's numbers, the raw inputs, variables and secret names; and the `github` context built
//! from them.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::trigger::Event;

/// Everything about a run that does not come from the workflow files.
///
/// Serializable: a server stores it with the run, so that planning again after a restart (same
/// context, same workflow sources) gives the same plan; see [`super::GraphInput`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    /// The event, for trigger decisions (name, activity type, ref, base ref, changed paths).
    pub event: Event,
    /// The event payload (`github.event`). `null` is treated as `{}`.
    pub payload: Value,
    /// The commit (`github.sha`); 40 zeros when unknown.
    pub sha: String,
    /// `owner/name`.
    pub repository: String,
    /// Who triggered the run (`github.actor`, `github.triggering_actor`).
    pub actor: String,
    /// `https://github.com` or the forge's address.
    pub server_url: String,
    /// `github.api_url`; derived from `server_url` when `None`.
    pub api_url: Option<String>,
    /// `github.graphql_url`; derived from `server_url` when `None`.
    pub graphql_url: Option<String>,
    pub run_id: u64,
    pub run_number: u64,
    pub run_attempt: u32,
    /// `github.retention_days`.
    pub retention_days: u32,
    /// `workflow_dispatch` inputs as given (`--input name=value`), typed by the planner against
    /// each workflow's declaration.
    pub inputs: Vec<(String, String)>,
    /// The `vars` context.
    pub vars: IndexMap<String, String>,
    /// Names of the secrets the run has (values never reach the planner).
    pub secret_names: Vec<String>,
}

impl RunContext {
    /// A context for `event` with neutral values: sha of zeros, repository `local/repository`,
    /// actor `gantry`, server `https://github.com`, run id/number/attempt 1, retention 90 days,
    /// empty payload, no inputs, variables or secrets.
    pub fn new(event: Event) -> RunContext {
        RunContext {
            event,
            payload: Value::Object(Map::new()),
            sha: "0".repeat(40),
            repository: "local/repository".to_owned(),
            actor: "gantry".to_owned(),
            server_url: "https://github.com".to_owned(),
            api_url: None,
            graphql_url: None,
            run_id: 1,
            run_number: 1,
            run_attempt: 1,
            retention_days: 90,
            inputs: Vec::new(),
            vars: IndexMap::new(),
            secret_names: Vec::new(),
        }
    }

    /// `github.api_url`: given, or `https://api.github.com` for github.com, else
    /// `<server>/api/v3` (GitHub Enterprise Server's layout).
    pub fn api_url(&self) -> String {
        if let Some(url) = &self.api_url {
            return url.clone();
        }
        let server = self.server_url.trim_end_matches('/');
        if server == "https://github.com" {
            "https://api.github.com".to_owned()
        } else {
            format!("{server}/api/v3")
        }
    }

    /// `github.graphql_url`, derived like [`RunContext::api_url`].
    pub fn graphql_url(&self) -> String {
        if let Some(url) = &self.graphql_url {
            return url.clone();
        }
        let server = self.server_url.trim_end_matches('/');
        if server == "https://github.com" {
            "https://api.github.com/graphql".to_owned()
        } else {
            format!("{server}/api/graphql")
        }
    }

    /// The `vars` context as JSON.
    pub fn vars_json(&self) -> Value {
        Value::Object(
            self.vars
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    /// The `github` context for the jobs of workflow `file` named `workflow_name` (as GitHub
    /// fills it before any job starts; `github.job`, `github.workspace`, `github.action` and
    /// `github.token` are the runner's).
    pub fn github_context(&self, file: &str, workflow_name: &str) -> Value {
        let event = &self.event;
        let payload = match &self.payload {
            Value::Null => Value::Object(Map::new()),
            other => other.clone(),
        };
        let git_ref = event.git_ref.clone().unwrap_or_default();
        let (ref_name, ref_type) = split_ref(&git_ref);
        let is_pull_request = matches!(event.name.as_str(), "pull_request" | "pull_request_target");
        let head_ref = if is_pull_request {
            payload
                .pointer("/pull_request/head/ref")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        };
        let base_ref = if is_pull_request {
            payload
                .pointer("/pull_request/base/ref")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    event
                        .base_ref
                        .as_deref()
                        .map(|b| b.trim_start_matches("refs/heads/").to_owned())
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let owner = self
            .repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(owner, _)| owner);
        let relative_file = file.trim_start_matches("./");
        let workflow_ref = format!("{}/{relative_file}@{git_ref}", self.repository);
        json!({
            "event_name": event.name,
            "event": payload,
            "ref": git_ref,
            "ref_name": ref_name,
            "ref_type": ref_type,
            "ref_protected": false,
            "head_ref": head_ref,
            "base_ref": base_ref,
            "sha": self.sha,
            "repository": self.repository,
            "repository_owner": owner,
            "repositoryUrl": format!("{}/{}.git", self.server_url.trim_end_matches('/'), self.repository),
            "actor": self.actor,
            "triggering_actor": self.actor,
            "run_id": self.run_id.to_string(),
            "run_number": self.run_number.to_string(),
            "run_attempt": self.run_attempt.to_string(),
            "retention_days": self.retention_days.to_string(),
            "workflow": workflow_name,
            "workflow_ref": workflow_ref,
            "workflow_sha": self.sha,
            "server_url": self.server_url,
            "api_url": self.api_url(),
            "graphql_url": self.graphql_url(),
            "secret_source": "Actions",
        })
    }
}

/// `refs/heads/main` -> (`main`, `branch`); `refs/tags/v1` -> (`v1`, `tag`);
/// `refs/pull/1/merge` -> (`1/merge`, `branch`) as GitHub shows pull request refs.
fn split_ref(git_ref: &str) -> (String, &'static str) {
    if let Some(name) = git_ref.strip_prefix("refs/heads/") {
        (name.to_owned(), "branch")
    } else if let Some(name) = git_ref.strip_prefix("refs/tags/") {
        (name.to_owned(), "tag")
    } else if let Some(name) = git_ref.strip_prefix("refs/pull/") {
        (name.to_owned(), "branch")
    } else {
        (git_ref.to_owned(), "")
    }
}
