//! GitLab payloads: push, tag push and merge request hooks, normalised; and the GitHub-shaped
//! `github.event` built from them so workflows written for GitHub read the same fields.
//!
//! GitLab names the repository `project` (`path_with_namespace`, `git_http_url`, `web_url`),
//! a merge request's number `iid`, its head `last_commit`, and its actions `open`, `update`,
//! `reopen`, `close`, `merge`, `approved`...; a fork is a merge request whose
//! `source_project_id` differs from its `target_project_id`.

use super::event::{
    EventKind, Forge, ForgeEvent, PullRequest, PullRequestBase, PullRequestHead, Push, RepoIdentity,
};
use super::github::changed_files;
use super::payload::{Obj, PayloadError, is_zero_sha};
use serde_json::{Map, Value, json};

/// The kind of a GitLab delivery: the `X-Gitlab-Event` header, or for a system hook (which
/// sends several kinds under one header) the body's `object_kind`.
fn kind_of(event_header: &str, obj: &Obj<'_>) -> Result<String, PayloadError> {
    let kind = match event_header {
        "Push Hook" => "push".to_owned(),
        "Tag Push Hook" => "tag_push".to_owned(),
        "Merge Request Hook" => "merge_request".to_owned(),
        "System Hook" => match obj.opt_str("object_kind")? {
            Some(kind) => kind.to_owned(),
            None => obj.opt_str("event_name")?.unwrap_or("system").to_owned(),
        },
        other => other
            .strip_suffix(" Hook")
            .unwrap_or(other)
            .trim()
            .to_ascii_lowercase()
            .replace(' ', "_"),
    };
    Ok(kind)
}

pub(super) fn parse(event_header: &str, root: &Value) -> Result<ForgeEvent, PayloadError> {
    let obj = Obj::root(root)?;
    let project = obj.obj("project")?;
    let repository = RepoIdentity {
        full_name: project.str("path_with_namespace")?.to_owned(),
        clone_url: match project.opt_str("git_http_url")? {
            Some(url) => url.to_owned(),
            None => project.str("http_url")?.to_owned(),
        },
        html_url: project.str("web_url")?.to_owned(),
        default_branch: project.opt_str("default_branch")?.map(str::to_owned),
    };
    let kind = kind_of(event_header, &obj)?;
    let sender = match kind.as_str() {
        // `user_name` is a display name, not a login: older payloads without
        // `user_username` have no sender.
        "push" | "tag_push" => obj.opt_str("user_username")?.map(str::to_owned),
        _ => match obj.opt_obj("user")? {
            Some(user) => user.opt_str("username")?.map(str::to_owned),
            None => None,
        },
    };
    let kind = match kind.as_str() {
        "push" => EventKind::Push(push(&obj)?),
        "tag_push" => EventKind::TagPush(push(&obj)?),
        "merge_request" => EventKind::PullRequest(merge_request(&obj, &repository)?),
        _ => EventKind::Other {
            action: match obj.opt_obj("object_attributes")? {
                Some(attributes) => attributes.opt_str("action")?.map(str::to_owned),
                None => None,
            },
            name: kind,
        },
    };
    Ok(ForgeEvent {
        forge: Forge::GitLab,
        repository,
        sender,
        kind,
    })
}

fn push(obj: &Obj<'_>) -> Result<Push, PayloadError> {
    let git_ref = obj.full_ref("ref")?.to_owned();
    let before = obj.sha("before")?.to_owned();
    let after = obj.sha("after")?.to_owned();
    let total = obj.opt_u64("total_commits_count")?;
    Ok(Push {
        git_ref,
        created: is_zero_sha(&before),
        deleted: is_zero_sha(&after),
        before,
        after,
        forced: false,
        changed_files: changed_files(obj, total, None)?,
    })
}

fn merge_request(obj: &Obj<'_>, repository: &RepoIdentity) -> Result<PullRequest, PayloadError> {
    let attributes = obj.obj("object_attributes")?;
    let state = attributes.opt_str("state")?;
    let raw_action = attributes.str("action")?;
    let merged = raw_action == "merge" || state == Some("merged");
    let action = match raw_action {
        "open" => "opened",
        "reopen" => "reopened",
        "close" | "merge" => "closed",
        // `oldrev` is present when the update pushed commits.
        "update" if attributes.opt_sha("oldrev")?.is_some() => "synchronize",
        "update" => "edited",
        other => other,
    }
    .to_owned();

    let source = attributes.opt_obj("source")?;
    let target = attributes.opt_obj("target")?;
    let head_full_name = match &source {
        Some(source) => Some(source.str("path_with_namespace")?.to_owned()),
        None => None,
    };
    let base_full_name = match &target {
        Some(target) => target.str("path_with_namespace")?.to_owned(),
        None => repository.full_name.clone(),
    };
    // A missing source project (deleted) counts as a fork: the safe side.
    let from_fork = match (
        attributes.opt_u64("source_project_id")?,
        attributes.opt_u64("target_project_id")?,
    ) {
        (Some(source), Some(target)) => source != target,
        _ => match &head_full_name {
            Some(head) => head != &base_full_name,
            None => true,
        },
    };
    let last_commit = attributes.obj("last_commit")?;
    Ok(PullRequest {
        action,
        number: attributes.u64("iid")?,
        title: attributes.str("title")?.to_owned(),
        head: PullRequestHead {
            git_ref: attributes.branch("source_branch")?.to_owned(),
            sha: last_commit.sha("id")?.to_owned(),
            repo_full_name: head_full_name,
            clone_url: match &source {
                Some(source) => source
                    .opt_str("git_http_url")?
                    .or(source.opt_str("http_url")?)
                    .map(str::to_owned),
                None => None,
            },
        },
        base: PullRequestBase {
            git_ref: attributes.branch("target_branch")?.to_owned(),
            sha: None,
            repo_full_name: base_full_name,
        },
        from_fork,
        merged,
        merge_commit: attributes.opt_sha("merge_commit_sha")?.map(str::to_owned),
    })
}

/// A GitHub-shaped `github.event` for a GitLab event (see [`ForgeEvent::github_payload`]).
pub(super) fn github_payload(event: &ForgeEvent, raw: &Value) -> Value {
    let mut payload = Map::new();
    match &event.kind {
        EventKind::Push(push) | EventKind::TagPush(push) => {
            payload.insert("ref".into(), json!(push.git_ref));
            payload.insert("before".into(), json!(push.before));
            payload.insert("after".into(), json!(push.after));
            payload.insert("created".into(), json!(push.created));
            payload.insert("deleted".into(), json!(push.deleted));
            payload.insert("forced".into(), json!(push.forced));
            payload.insert("base_ref".into(), Value::Null);
            let commits = raw
                .get("commits")
                .filter(|c| c.is_array())
                .cloned()
                .unwrap_or_else(|| json!([]));
            let head_commit = commits
                .as_array()
                .and_then(|list| {
                    list.iter()
                        .find(|c| c.get("id").and_then(Value::as_str) == Some(&push.after))
                })
                .cloned()
                .unwrap_or(Value::Null);
            payload.insert("commits".into(), commits);
            payload.insert("head_commit".into(), head_commit);
            payload.insert(
                "pusher".into(),
                json!({
                    "name": raw.get("user_name").cloned().unwrap_or(Value::Null),
                    "email": raw.get("user_email").cloned().unwrap_or(Value::Null),
                }),
            );
        }
        EventKind::PullRequest(pr) => {
            let attributes = raw.get("object_attributes");
            let attribute = |key: &str| {
                attributes
                    .and_then(|a| a.get(key))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let state = match attributes
                .and_then(|a| a.get("state"))
                .and_then(Value::as_str)
            {
                Some("opened") | None => "open",
                Some(_) => "closed",
            };
            let head_repo = match &pr.head.repo_full_name {
                Some(full_name) => json!({
                    "full_name": full_name,
                    "clone_url": pr.head.clone_url,
                }),
                None => Value::Null,
            };
            payload.insert("action".into(), json!(pr.action));
            payload.insert("number".into(), json!(pr.number));
            payload.insert(
                "pull_request".into(),
                json!({
                    "number": pr.number,
                    "title": pr.title,
                    "body": attribute("description"),
                    "state": state,
                    "draft": attribute("draft"),
                    "merged": pr.merged,
                    "merge_commit_sha": pr.merge_commit,
                    "html_url": attribute("url"),
                    "head": {
                        "ref": pr.head.git_ref,
                        "sha": pr.head.sha,
                        "repo": head_repo,
                    },
                    "base": {
                        "ref": pr.base.git_ref,
                        "sha": pr.base.sha,
                        "repo": {"full_name": pr.base.repo_full_name},
                    },
                }),
            );
        }
        EventKind::Ping => {}
        EventKind::Other { action, .. } => {
            if let Some(action) = action {
                payload.insert("action".into(), json!(action));
            }
        }
    }
    payload.insert("repository".into(), repository_json(&event.repository, raw));
    payload.insert(
        "sender".into(),
        match &event.sender {
            Some(login) => json!({ "login": login }),
            None => Value::Null,
        },
    );
    payload.insert("gitlab".into(), raw.clone());
    Value::Object(payload)
}

/// GitHub's `repository` object from GitLab's `project`.
fn repository_json(repository: &RepoIdentity, raw: &Value) -> Value {
    let (owner, name) = match repository.full_name.rsplit_once('/') {
        Some((owner, name)) => (owner, name),
        None => ("", repository.full_name.as_str()),
    };
    let project = raw.get("project");
    json!({
        "full_name": repository.full_name,
        "name": name,
        "owner": {"login": owner},
        "clone_url": repository.clone_url,
        "html_url": repository.html_url,
        "ssh_url": project.and_then(|p| p.get("git_ssh_url")).cloned().unwrap_or(Value::Null),
        "default_branch": repository.default_branch,
        "private": project
            .and_then(|p| p.get("visibility_level"))
            .and_then(Value::as_u64)
            .map(|level| level != 20),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mr(action: &str, extra: Value) -> Value {
        let mut attributes = json!({
            "iid": 3,
            "title": "t",
            "action": action,
            "state": "opened",
            "source_branch": "feature",
            "target_branch": "main",
            "source_project_id": 5,
            "target_project_id": 5,
            "last_commit": {"id": "a".repeat(40)},
        });
        if let (Some(a), Value::Object(extra)) = (attributes.as_object_mut(), extra) {
            a.extend(extra);
        }
        json!({
            "object_kind": "merge_request",
            "project": {
                "path_with_namespace": "g/p",
                "git_http_url": "http://x/g/p.git",
                "web_url": "http://x/g/p",
            },
            "object_attributes": attributes,
        })
    }

    fn action_of(payload: &Value) -> (String, bool) {
        let event = parse("Merge Request Hook", payload).expect("parses");
        match event.kind {
            EventKind::PullRequest(pr) => (pr.action, pr.merged),
            other => panic!("not a merge request: {other:?}"),
        }
    }

    #[test]
    fn merge_request_actions_get_github_names() {
        assert_eq!(action_of(&mr("open", json!({}))), ("opened".into(), false));
        assert_eq!(
            action_of(&mr("reopen", json!({}))),
            ("reopened".into(), false)
        );
        assert_eq!(action_of(&mr("close", json!({}))), ("closed".into(), false));
        assert_eq!(action_of(&mr("merge", json!({}))), ("closed".into(), true));
        assert_eq!(
            action_of(&mr("update", json!({"oldrev": "b".repeat(40)}))),
            ("synchronize".into(), false)
        );
        assert_eq!(
            action_of(&mr("update", json!({}))),
            ("edited".into(), false)
        );
        assert_eq!(
            action_of(&mr("approved", json!({}))),
            ("approved".into(), false)
        );
    }

    #[test]
    fn fork_merge_request_is_flagged() {
        let payload = mr("open", json!({"source_project_id": 9}));
        let event = parse("Merge Request Hook", &payload).expect("parses");
        let EventKind::PullRequest(pr) = event.kind else {
            panic!("not a merge request")
        };
        assert!(pr.from_fork);
    }

    #[test]
    fn other_hooks_are_named_in_snake_case() {
        let payload = json!({
            "object_kind": "note",
            "project": {"path_with_namespace": "g/p", "git_http_url": "u", "web_url": "w"},
            "object_attributes": {"action": "create"},
        });
        let event = parse("Note Hook", &payload).expect("parses");
        assert_eq!(
            event.kind,
            EventKind::Other {
                name: "note".into(),
                action: Some("create".into())
            }
        );
        let event = parse("Confidential Note Hook", &payload).expect("parses");
        assert!(matches!(event.kind, EventKind::Other { name, .. } if name == "confidential_note"));
    }

    #[test]
    fn system_hook_uses_the_object_kind() {
        let payload = json!({
            "object_kind": "push",
            "ref": "refs/heads/main",
            "before": "0".repeat(40),
            "after": "c".repeat(40),
            "project": {"path_with_namespace": "g/p", "git_http_url": "u", "web_url": "w"},
        });
        let event = parse("System Hook", &payload).expect("parses");
        let EventKind::Push(push) = event.kind else {
            panic!("not a push")
        };
        assert!(push.created);
        assert_eq!(push.changed_files, None);
    }
}
