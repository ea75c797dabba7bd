//! The event a local command acts on (`gantry run`, `gantry plan`): its name, ref, commit,
//! payload and changed paths, from the command line, a payload file and the git checkout.

use crate::repo::Repo;
use anyhow::Context as _;
use gantry_workflow::plan::RunContext;
use gantry_workflow::trigger::Event;
use serde_json::{Value, json};
use std::path::Path;

/// What the user said about the event.
#[derive(Clone, Debug, Default)]
pub struct EventOptions {
    /// `--event` (default `push`).
    pub name: Option<String>,
    /// `--ref`: a full ref or a branch name.
    pub git_ref: Option<String>,
    /// `--base`: the base branch of a pull request.
    pub base: Option<String>,
    /// `--payload`: a JSON file.
    pub payload: Option<std::path::PathBuf>,
    /// `--changed`: paths changed by the event (instead of asking git).
    pub changed: Vec<String>,
    /// `--input k=v`.
    pub inputs: Vec<(String, String)>,
    /// Whether the changed paths are needed (some workflow has path filters, or they are
    /// shown); when not, git is not asked for them.
    pub need_changed: bool,
}

/// Where the changed paths came from, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangedSource {
    CommandLine,
    Payload,
    Git(String),
    Unknown,
}

/// Builds the run context of an event in `repo`.
pub fn build_context(
    repo: &Repo,
    options: &EventOptions,
) -> anyhow::Result<(RunContext, ChangedSource)> {
    let name = options.name.clone().unwrap_or_else(|| "push".to_owned());
    let payload_file: Option<Value> = match &options.payload {
        Some(path) => Some(read_payload(path)?),
        None => None,
    };
    let sha = repo.head_sha().unwrap_or_else(|| "0".repeat(40));
    let branch = repo.current_branch();
    let default_branch = branch.clone().unwrap_or_else(|| "main".to_owned());
    let repository = repo.name();

    // The ref: --ref, the payload's, or the current branch.
    let from_payload = payload_file
        .as_ref()
        .and_then(|p| p.get("ref"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let git_ref = match (&options.git_ref, from_payload) {
        (Some(r), _) => full_ref(r),
        (None, Some(r)) => full_ref(&r),
        (None, None) if is_pull_request(&name) => "refs/pull/1/merge".to_owned(),
        (None, None) => format!("refs/heads/{default_branch}"),
    };
    let base_ref = if is_pull_request(&name) {
        Some(
            options
                .base
                .clone()
                .or_else(|| {
                    payload_file
                        .as_ref()
                        .and_then(|p| p.pointer("/pull_request/base/ref"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "main".to_owned()),
        )
    } else {
        None
    };
    let action = payload_file
        .as_ref()
        .and_then(|p| p.get("action"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| is_pull_request(&name).then(|| "opened".to_owned()));

    let (changed, source) = if !options.changed.is_empty() {
        (Some(options.changed.clone()), ChangedSource::CommandLine)
    } else if !options.need_changed {
        (None, ChangedSource::Unknown)
    } else {
        changed_from_git(repo, payload_file.as_ref(), base_ref.as_deref())
    };

    let payload = payload_file.unwrap_or_else(|| {
        synthesize_payload(
            &name,
            &git_ref,
            &sha,
            &repository,
            base_ref.as_deref(),
            branch.as_deref(),
            &options.inputs,
        )
    });
    let event = Event {
        name,
        action,
        git_ref: Some(git_ref),
        base_ref,
        changed_paths: changed,
        workflow_name: None,
    };
    // A dispatch payload's inputs are the run's inputs; `--input` values win.
    let mut inputs: Vec<(String, String)> = payload
        .get("inputs")
        .and_then(Value::as_object)
        .map(|given| {
            given
                .iter()
                .filter(|(k, _)| !options.inputs.iter().any(|(name, _)| name == *k))
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    inputs.extend(options.inputs.iter().cloned());
    let mut ctx = RunContext::new(event);
    ctx.payload = payload;
    ctx.sha = sha;
    ctx.repository = repository;
    ctx.actor = std::env::var("USER").unwrap_or_else(|_| "gantry".to_owned());
    ctx.inputs = inputs;
    Ok((ctx, source))
}

fn is_pull_request(event: &str) -> bool {
    matches!(event, "pull_request" | "pull_request_target")
}

/// `main` -> `refs/heads/main`; full refs unchanged.
pub fn full_ref(r: &str) -> String {
    if r.starts_with("refs/") {
        r.to_owned()
    } else {
        format!("refs/heads/{r}")
    }
}

fn read_payload(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the payload file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("the payload file {} is not valid JSON", path.display()))?;
    if !value.is_object() {
        anyhow::bail!(
            "the payload file {} must hold a JSON object (the webhook payload)",
            path.display()
        );
    }
    Ok(value)
}

/// Paths changed by the event according to git: a push compares its `before` commit (or the
/// parent of HEAD) with HEAD; a pull request compares the merge base with the base branch.
fn changed_from_git(
    repo: &Repo,
    payload: Option<&Value>,
    base_ref: Option<&str>,
) -> (Option<Vec<String>>, ChangedSource) {
    if !repo.is_git {
        return (None, ChangedSource::Unknown);
    }
    let lines = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(base) = base_ref {
        let base = base.trim_start_matches("refs/heads/");
        if let Some(merge_base) = repo.git(&["merge-base", base, "HEAD"])
            && let Some(text) = repo.git(&["diff", "--name-only", &merge_base, "HEAD"])
        {
            return (
                Some(lines(text)),
                ChangedSource::Git(format!("git diff {base}...HEAD")),
            );
        }
    }
    let before = payload
        .and_then(|p| p.get("before"))
        .and_then(Value::as_str)
        .filter(|b| !b.chars().all(|c| c == '0'))
        .map(str::to_owned);
    if let Some(before) = before
        && let Some(text) = repo.git(&["diff", "--name-only", &before, "HEAD"])
    {
        return (Some(lines(text)), ChangedSource::Payload);
    }
    match repo.git(&["diff", "--name-only", "HEAD~1", "HEAD"]) {
        Some(text) => (
            Some(lines(text)),
            ChangedSource::Git("git diff HEAD~1 HEAD".to_owned()),
        ),
        // A first commit: everything in it is new.
        None => match repo.git(&["ls-tree", "-r", "--name-only", "HEAD"]) {
            Some(text) => (
                Some(lines(text)),
                ChangedSource::Git("the first commit (all files)".to_owned()),
            ),
            None => (None, ChangedSource::Unknown),
        },
    }
}

/// A payload shaped like the forge's webhook for this event, for runs without `--payload`.
fn synthesize_payload(
    name: &str,
    git_ref: &str,
    sha: &str,
    repository: &str,
    base_ref: Option<&str>,
    branch: Option<&str>,
    inputs: &[(String, String)],
) -> Value {
    let (owner, short) = repository.split_once('/').unwrap_or(("local", repository));
    let repo = json!({
        "full_name": repository,
        "name": short,
        "owner": { "login": owner, "name": owner },
        "default_branch": base_ref.unwrap_or("main"),
    });
    let sender = json!({ "login": std::env::var("USER").unwrap_or_else(|_| "gantry".to_owned()) });
    match name {
        "push" => json!({
            "ref": git_ref,
            "before": "0".repeat(40),
            "after": sha,
            "created": false,
            "deleted": false,
            "forced": false,
            "repository": repo,
            "sender": sender,
            "pusher": sender,
            "head_commit": { "id": sha },
        }),
        "pull_request" | "pull_request_target" => json!({
            "action": "opened",
            "number": 1,
            "pull_request": {
                "number": 1,
                "head": { "ref": branch.unwrap_or("feature"), "sha": sha },
                "base": { "ref": base_ref.unwrap_or("main") },
            },
            "repository": repo,
            "sender": sender,
        }),
        "workflow_dispatch" => {
            let inputs: serde_json::Map<String, Value> = inputs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({ "ref": git_ref, "inputs": inputs, "repository": repo, "sender": sender })
        }
        _ => json!({ "repository": repo, "sender": sender }),
    }
}

/// Parses `NAME=VALUE` (for `--input`, `--secret`, `--var`, `--matrix`).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_completed() {
        assert_eq!(full_ref("main"), "refs/heads/main");
        assert_eq!(full_ref("refs/tags/v1"), "refs/tags/v1");
    }

    #[test]
    fn pairs_need_a_name_and_an_equals_sign() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_pair("a="), Ok(("a".into(), String::new())));
        assert!(parse_pair("=b").is_err());
        assert!(parse_pair("ab").is_err());
    }
}
