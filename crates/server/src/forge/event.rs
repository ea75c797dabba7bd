//! The normalised webhook event: what happened in which repository, the same shape whichever
//! forge sent it, and its translations for the planner (a trigger event) and for workflows
//! (`github.event`).

use gantry_workflow::trigger;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A forge family. Forgejo is a Gitea here: its webhooks and API have the same shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    GitHub,
    Gitea,
    GitLab,
}

impl Forge {
    /// The name stored in `repositories.forge` and `deliveries.forge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::Gitea => "gitea",
            Forge::GitLab => "gitlab",
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown forge name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown forge {0:?} (expected github, gitea, forgejo or gitlab)")]
pub struct UnknownForge(pub String);

impl FromStr for Forge {
    type Err = UnknownForge;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "github" => Ok(Forge::GitHub),
            "gitea" | "forgejo" => Ok(Forge::Gitea),
            "gitlab" => Ok(Forge::GitLab),
            _ => Err(UnknownForge(s.to_owned())),
        }
    }
}

/// A webhook delivery's meaning, normalised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeEvent {
    /// Which forge sent it (decides the shape of `github_payload`).
    pub forge: Forge,
    /// The repository the webhook belongs to (for a pull request: the base repository).
    pub repository: RepoIdentity,
    /// The login of the account that caused the event, when the payload says.
    pub sender: Option<String>,
    pub kind: EventKind,
}

/// A repository as a payload names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoIdentity {
    /// `owner/repo`; GitLab's `path_with_namespace` (`group/subgroup/project`).
    pub full_name: String,
    /// The HTTP(S) clone URL.
    pub clone_url: String,
    /// The repository's web page.
    pub html_url: String,
    /// The default branch, when the payload says.
    pub default_branch: Option<String>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The forge checks the webhook works (GitHub and Gitea `ping`).
    Ping,
    /// A branch or tag was pushed, created or deleted (GitHub and Gitea report tags this way).
    Push(Push),
    /// A GitLab tag push (`Tag Push Hook`). For the planner it is a push of `refs/tags/*`.
    TagPush(Push),
    /// A pull request (GitLab: merge request) was opened, updated, closed...
    PullRequest(PullRequest),
    /// An event Gantry accepts and stores but does not plan runs for (`create`, `release`,
    /// `Note Hook`, ...). `name` is the header's event name (GitLab's without ` Hook`, in
    /// snake case: `note`, `pipeline`).
    Other {
        name: String,
        action: Option<String>,
    },
}

/// A push of one ref.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The full ref: `refs/heads/main`, `refs/tags/v1`.
    pub git_ref: String,
    /// The commit the ref pointed to before (all zeros when it was created).
    pub before: String,
    /// The commit it points to now (all zeros when it was deleted).
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    /// A force push (GitHub says; Gitea and GitLab do not, so `false` there).
    pub forced: bool,
    /// The files the pushed commits added, modified or removed, sorted, when the payload lists
    /// them completely. `None` when it does not list files or lists only some of the commits
    /// (GitLab sends at most 20, GitHub at most 2048). The server computes changed paths from
    /// git either way; this is for display and checks.
    pub changed_files: Option<Vec<String>>,
}

impl Push {
    /// Whether the pushed ref is a tag.
    pub fn is_tag(&self) -> bool {
        self.git_ref.starts_with("refs/tags/")
    }
}

/// A pull request event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The activity with GitHub's names: `opened`, `synchronize`, `reopened`, `closed`,
    /// `edited`, `labeled`... (Gitea's `synchronized` and GitLab's `open`/`update`/`reopen`/
    /// `close`/`merge` are translated).
    pub action: String,
    /// The pull request number (GitLab: the merge request's `iid`).
    pub number: u64,
    pub title: String,
    pub head: PullRequestHead,
    pub base: PullRequestBase,
    /// The head commit lives in another repository than the base (a fork), or its repository
    /// is gone. Such runs are untrusted: no secrets.
    pub from_fork: bool,
    /// Closed by merging.
    pub merged: bool,
    /// The merge commit the forge computed or made, when it says.
    pub merge_commit: Option<String>,
}

/// The proposed side of a pull request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestHead {
    /// The branch name as the forge gives it (`feature`, not `refs/heads/feature`).
    pub git_ref: String,
    pub sha: String,
    /// `None` when the head repository was deleted.
    pub repo_full_name: Option<String>,
    pub clone_url: Option<String>,
}

/// The target side of a pull request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestBase {
    /// The branch name (`main`).
    pub git_ref: String,
    /// The base branch's commit; GitLab does not send it.
    pub sha: Option<String>,
    pub repo_full_name: String,
}

impl ForgeEvent {
    /// The event as the planner sees it. Changed paths are left `None`: the server computes
    /// them from git.
    pub fn to_trigger_event(&self) -> trigger::Event {
        let (name, action, git_ref, base_ref) = match &self.kind {
            EventKind::Ping => ("ping".to_owned(), None, None, None),
            EventKind::Push(push) | EventKind::TagPush(push) => {
                ("push".to_owned(), None, Some(push.git_ref.clone()), None)
            }
            EventKind::PullRequest(pr) => (
                "pull_request".to_owned(),
                Some(pr.action.clone()),
                Some(format!("refs/pull/{}/merge", pr.number)),
                Some(pr.base.git_ref.clone()),
            ),
            EventKind::Other { name, action } => (name.clone(), action.clone(), None, None),
        };
        trigger::Event {
            name,
            action,
            git_ref,
            base_ref,
            changed_paths: None,
            workflow_name: None,
        }
    }

    /// The `github.event` a workflow sees. GitHub and Gitea payloads are already GitHub-shaped
    /// and are returned as they are; a GitLab payload becomes a GitHub-shaped one (`ref`,
    /// `before`, `after`, `repository`, `pull_request`, `sender`, ...) with the original under
    /// `gitlab`, so a workflow written for GitHub reads the same fields.
    pub fn github_payload(&self, raw: &Value) -> Value {
        match self.forge {
            Forge::GitHub | Forge::Gitea => raw.clone(),
            Forge::GitLab => super::gitlab::github_payload(self, raw),
        }
    }

    /// The commit a run for this event checks out: the pushed commit or the pull request's
    /// head. `None` for deletions, pings and other events.
    pub fn head_sha(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Push(push) | EventKind::TagPush(push) if !push.deleted => Some(&push.after),
            EventKind::PullRequest(pr) => Some(&pr.head.sha),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forge_names_round_trip() {
        for forge in [Forge::GitHub, Forge::Gitea, Forge::GitLab] {
            assert_eq!(forge.as_str().parse::<Forge>(), Ok(forge));
        }
        assert_eq!("Forgejo".parse::<Forge>(), Ok(Forge::Gitea));
        assert_eq!(
            "bitbucket"
                .parse::<Forge>()
                .expect_err("unknown")
                .to_string(),
            "unknown forge \"bitbucket\" (expected github, gitea, forgejo or gitlab)"
        );
    }
}
