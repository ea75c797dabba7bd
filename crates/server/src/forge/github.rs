//! GitHub and Gitea/Forgejo payloads. Gitea copies GitHub's shapes closely; the differences
//! handled here: a Gitea push has no `created`/`deleted`/`forced` (they follow from the zero
//! commit ids), its pull request actions are named differently (`synchronized`), and its
//! pull request heads carry `repo_id`.

use super::event::{
    EventKind, Forge, ForgeEvent, PullRequest, PullRequestBase, PullRequestHead, Push, RepoIdentity,
};
use super::payload::{Obj, PayloadError, is_zero_sha};
use serde_json::Value;

/// GitHub's push payload lists at most this many commits.
const GITHUB_MAX_COMMITS: usize = 2048;

pub(super) fn parse(forge: Forge, event: &str, root: &Value) -> Result<ForgeEvent, PayloadError> {
    let obj = Obj::root(root)?;
    let repository = repository(&obj.obj("repository")?)?;
    let sender = match obj.opt_obj("sender")? {
        Some(sender) => sender
            .opt_str("login")?
            .or(sender.opt_str("username")?)
            .map(str::to_owned),
        None => None,
    };
    let kind = match event {
        "ping" => EventKind::Ping,
        "push" => EventKind::Push(push(forge, &obj)?),
        "pull_request" => EventKind::PullRequest(pull_request(forge, &obj, &repository)?),
        other => EventKind::Other {
            name: other.to_owned(),
            action: obj.opt_str("action")?.map(str::to_owned),
        },
    };
    Ok(ForgeEvent {
        forge,
        repository,
        sender,
        kind,
    })
}

fn repository(repo: &Obj<'_>) -> Result<RepoIdentity, PayloadError> {
    Ok(RepoIdentity {
        full_name: repo.str("full_name")?.to_owned(),
        clone_url: repo.str("clone_url")?.to_owned(),
        html_url: repo.str("html_url")?.to_owned(),
        default_branch: repo.opt_str("default_branch")?.map(str::to_owned),
    })
}

fn push(forge: Forge, obj: &Obj<'_>) -> Result<Push, PayloadError> {
    let git_ref = obj.full_ref("ref")?.to_owned();
    let before = obj.sha("before")?.to_owned();
    let after = obj.sha("after")?.to_owned();
    let created = obj.opt_bool("created")?.unwrap_or(is_zero_sha(&before));
    let deleted = obj.opt_bool("deleted")?.unwrap_or(is_zero_sha(&after));
    let forced = obj.opt_bool("forced")?.unwrap_or(false);
    // Gitea says how many commits the push had when it lists fewer.
    let total = obj.opt_u64("total_commits")?;
    let limit = match forge {
        Forge::GitHub => Some(GITHUB_MAX_COMMITS),
        _ => None,
    };
    let changed_files = changed_files(obj, total, limit)?;
    Ok(Push {
        git_ref,
        before,
        after,
        created,
        deleted,
        forced,
        changed_files,
    })
}

/// The union of the listed commits' `added`, `modified` and `removed`, sorted; `None` when a
/// commit does not list its files or the list is known or likely to be cut short.
pub(super) fn changed_files(
    obj: &Obj<'_>,
    total_commits: Option<u64>,
    max_listed: Option<usize>,
) -> Result<Option<Vec<String>>, PayloadError> {
    let Some(commits) = obj.opt_array("commits")? else {
        return Ok(None);
    };
    if total_commits.is_some_and(|total| total > commits.len() as u64)
        || max_listed.is_some_and(|max| commits.len() >= max)
    {
        return Ok(None);
    }
    let mut files = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let commit = Obj::at(commit, format!("{}[{i}]", obj.field("commits")))?;
        let mut listed = false;
        for key in ["added", "modified", "removed"] {
            let Some(paths) = commit.opt_array(key)? else {
                continue;
            };
            listed = true;
            for (j, path) in paths.iter().enumerate() {
                match path {
                    Value::String(path) => files.push(path.clone()),
                    _ => {
                        return Err(PayloadError::WrongType {
                            field: format!("{}[{j}]", commit.field(key)),
                            expected: "a string",
                            found: "not a string",
                        });
                    }
                }
            }
        }
        if !listed {
            return Ok(None);
        }
    }
    files.sort();
    files.dedup();
    Ok(Some(files))
}

fn pull_request(
    forge: Forge,
    obj: &Obj<'_>,
    repository: &RepoIdentity,
) -> Result<PullRequest, PayloadError> {
    let raw_action = obj.str("action")?;
    let action = match forge {
        Forge::Gitea => gitea_action(raw_action),
        _ => raw_action,
    }
    .to_owned();
    let pr = obj.obj("pull_request")?;
    let number = match obj.opt_u64("number")? {
        Some(n) => n,
        None => pr.u64("number")?,
    };
    let title = pr.str("title")?.to_owned();

    let head = pr.obj("head")?;
    let head_repo = head.opt_obj("repo")?;
    let base = pr.obj("base")?;
    let base_repo = base.opt_obj("repo")?;
    let base_full_name = match &base_repo {
        Some(repo) => repo.str("full_name")?.to_owned(),
        None => repository.full_name.clone(),
    };
    let head_full_name = match &head_repo {
        Some(repo) => Some(repo.str("full_name")?.to_owned()),
        None => None,
    };

    // Ids survive renames; names are the fallback. A missing head repository (deleted fork)
    // counts as a fork: the safe side.
    let head_id = match &head_repo {
        Some(repo) => repo.opt_u64("id")?,
        None => None,
    }
    .or(head.opt_u64("repo_id")?);
    let base_id = match &base_repo {
        Some(repo) => repo.opt_u64("id")?,
        None => None,
    }
    .or(base.opt_u64("repo_id")?);
    let from_fork = match (&head_full_name, head_id, base_id) {
        (None, None, _) => true,
        (_, Some(head), Some(base)) => head != base,
        (Some(head), _, _) => !head.eq_ignore_ascii_case(&base_full_name),
        (None, Some(_), None) => true,
    };

    Ok(PullRequest {
        action,
        number,
        title,
        head: PullRequestHead {
            git_ref: head.branch("ref")?.to_owned(),
            sha: head.sha("sha")?.to_owned(),
            repo_full_name: head_full_name,
            clone_url: match &head_repo {
                Some(repo) => repo.opt_str("clone_url")?.map(str::to_owned),
                None => None,
            },
        },
        base: PullRequestBase {
            git_ref: base.branch("ref")?.to_owned(),
            sha: base.opt_sha("sha")?.map(str::to_owned),
            repo_full_name: base_full_name,
        },
        from_fork,
        merged: pr.opt_bool("merged")?.unwrap_or(false),
        merge_commit: pr.opt_sha("merge_commit_sha")?.map(str::to_owned),
    })
}

/// Gitea's pull request actions with GitHub's names.
fn gitea_action(action: &str) -> &str {
    match action {
        "synchronized" => "synchronize",
        "label_updated" => "labeled",
        "label_cleared" => "unlabeled",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pr_payload(head_repo: Value, base_repo: Value) -> Value {
        json!({
            "action": "synchronized",
            "number": 7,
            "pull_request": {
                "title": "t",
                "head": {"ref": "feature", "sha": "a".repeat(40), "repo": head_repo},
                "base": {"ref": "main", "sha": "b".repeat(40), "repo": base_repo},
            },
            "repository": {"full_name": "o/r", "clone_url": "c", "html_url": "h"},
        })
    }

    #[test]
    fn fork_detection_prefers_repository_ids() {
        let same_id_renamed = pr_payload(
            json!({"id": 1, "full_name": "o/old-name"}),
            json!({"id": 1, "full_name": "o/r"}),
        );
        let event = parse(Forge::Gitea, "pull_request", &same_id_renamed).expect("parses");
        let EventKind::PullRequest(pr) = event.kind else {
            panic!("not a pull request")
        };
        assert!(!pr.from_fork);
        assert_eq!(pr.action, "synchronize");

        let other_id = pr_payload(
            json!({"id": 2, "full_name": "o/r"}),
            json!({"id": 1, "full_name": "o/r"}),
        );
        let event = parse(Forge::GitHub, "pull_request", &other_id).expect("parses");
        let EventKind::PullRequest(pr) = event.kind else {
            panic!("not a pull request")
        };
        assert!(pr.from_fork);
        // GitHub's action names are kept as they are.
        assert_eq!(pr.action, "synchronized");
    }

    #[test]
    fn deleted_head_repository_counts_as_fork() {
        let payload = pr_payload(Value::Null, json!({"id": 1, "full_name": "o/r"}));
        let event = parse(Forge::GitHub, "pull_request", &payload).expect("parses");
        let EventKind::PullRequest(pr) = event.kind else {
            panic!("not a pull request")
        };
        assert!(pr.from_fork);
        assert_eq!(pr.head.repo_full_name, None);
    }

    #[test]
    fn hostile_head_branch_is_refused() {
        let mut payload = pr_payload(
            json!({"id": 1, "full_name": "o/r"}),
            json!({"id": 1, "full_name": "o/r"}),
        );
        payload["pull_request"]["head"]["ref"] = json!("--upload-pack=touch /tmp/pwned");
        let err = parse(Forge::GitHub, "pull_request", &payload).expect_err("refused");
        assert_eq!(err.field(), Some("pull_request.head.ref"));
    }
}
