//! `uses:` steps: which actions Gantry can run, and running them. Built in: `actions/checkout`;
//! local composite actions (`uses: ./path`). Anything else is refused before the job starts
//! (see `JobRun::prepare`).

use crate::checkout::{self, CheckoutOptions, RepoSource, Submodules};
use crate::job::{JobRun, Scope, evaluate_string};
use gantry_expr::Contexts;
use gantry_protocol::{AnnotationLevel, Conclusion, StepSpec};
use indexmap::IndexMap;
use std::time::Duration;

/// What a `uses:` value refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `actions/checkout@<any version>`.
    Checkout,
    /// `./path/to/action` in the workspace.
    Local(String),
    /// An action Gantry cannot run, with the reason.
    Unavailable(String),
}

/// Classifies a step's `uses:` value.
pub fn classify(uses: &str) -> ActionKind {
    let uses = uses.trim();
    if uses.starts_with("./") || uses == "." {
        return ActionKind::Local(uses.to_owned());
    }
    if let Some(image) = uses.strip_prefix("docker://") {
        return ActionKind::Unavailable(format!("`docker://{image}` needs the Docker backend"));
    }
    let (name, _version) = uses.split_once('@').unwrap_or((uses, ""));
    if name.eq_ignore_ascii_case("actions/checkout") {
        return ActionKind::Checkout;
    }
    ActionKind::Unavailable(format!(
        "`{uses}` is not built into Gantry and cannot be fetched"
    ))
}

/// Runs a `uses:` step.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_action(
    job: &mut JobRun,
    event_step: usize,
    step: &StepSpec,
    uses: &str,
    with: &IndexMap<String, String>,
    env: &IndexMap<String, String>,
    ctx: &Contexts,
    scope: &mut Scope,
    timeout: Option<Duration>,
) -> (Conclusion, IndexMap<String, String>) {
    let mut inputs = IndexMap::new();
    for (name, template) in with {
        match evaluate_string(template, ctx) {
            Ok(value) => {
                inputs.insert(name.to_ascii_lowercase(), value);
            }
            Err(e) => {
                job.annotate(
                    Some(event_step),
                    AnnotationLevel::Error,
                    &format!("input `{name}`: {e}"),
                );
                return (Conclusion::Failure, IndexMap::new());
            }
        }
    }
    match classify(uses) {
        ActionKind::Checkout => run_checkout(job, event_step, &inputs, timeout).await,
        ActionKind::Local(path) => {
            crate::composite::run_composite(
                job, event_step, step, &path, inputs, env, ctx, scope, timeout,
            )
            .await
        }
        ActionKind::Unavailable(reason) => {
            if job.req.options.skip_unavailable_actions {
                job.annotate(
                    Some(event_step),
                    AnnotationLevel::Warning,
                    &format!("Skipped: {reason} (--skip-unavailable-actions)"),
                );
                (Conclusion::Skipped, IndexMap::new())
            } else {
                job.annotate(Some(event_step), AnnotationLevel::Error, &reason);
                (Conclusion::Failure, IndexMap::new())
            }
        }
    }
}

/// The built-in `actions/checkout`.
async fn run_checkout(
    job: &mut JobRun,
    event_step: usize,
    inputs: &IndexMap<String, String>,
    timeout: Option<Duration>,
) -> (Conclusion, IndexMap<String, String>) {
    let input = |name: &str| inputs.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
    let fail = |job: &JobRun, message: String| {
        job.annotate(Some(event_step), AnnotationLevel::Error, &message);
        (Conclusion::Failure, IndexMap::new())
    };

    let own_repository = job
        .req
        .spec
        .github
        .get("repository")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    if let Some(repository) = input("repository")
        && !repository.eq_ignore_ascii_case(&own_repository)
    {
        return fail(
            job,
            format!(
                "actions/checkout of another repository (`{repository}`) is not available: \
                 Gantry checks out the run's own repository (`{own_repository}`) only"
            ),
        );
    }
    let Some(mut source) = job.req.source.clone() else {
        return fail(
            job,
            "actions/checkout: this run has no repository to check out".to_owned(),
        );
    };
    let path = input("path").unwrap_or(".");
    let dest = match contained_path(&job.req.workspace, path) {
        Some(dest) => dest,
        None => {
            return fail(
                job,
                format!("actions/checkout: path `{path}` is outside the workspace"),
            );
        }
    };
    if let Some(git_ref) = input("ref") {
        match resolve_ref(&source, git_ref).await {
            Ok(resolved) => source = resolved,
            Err(message) => return fail(job, format!("actions/checkout: {message}")),
        }
    }
    if job.req.workspace_is_working_tree && dest == job.req.workspace && input("ref").is_none() {
        job.log(
            Some(event_step),
            "Using the working tree as it is (--workspace-here): nothing to check out\n",
        );
        return (Conclusion::Success, checkout_outputs(&source));
    }

    let bool_input = |name: &str, default: bool| match input(name) {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    };
    let fetch_depth = match input("fetch-depth") {
        Some(v) => match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                return fail(
                    job,
                    format!("actions/checkout: fetch-depth `{v}` is not a number"),
                );
            }
        },
        None => 1,
    };
    let submodules = match input("submodules") {
        Some(v) if v.eq_ignore_ascii_case("recursive") => Submodules::Recursive,
        Some(v) if v.eq_ignore_ascii_case("true") => Submodules::Yes,
        _ => Submodules::No,
    };
    for ignored in ["sparse-checkout", "filter"] {
        if input(ignored).is_some() {
            job.annotate(
                Some(event_step),
                AnnotationLevel::Warning,
                &format!(
                    "actions/checkout: `{ignored}` is not supported; the full tree is checked out"
                ),
            );
        }
    }
    let options = CheckoutOptions {
        fetch_depth,
        clean: bool_input("clean", true),
        fetch_tags: bool_input("fetch-tags", false),
        submodules,
        lfs: bool_input("lfs", false),
    };

    let mut lines: Vec<String> = Vec::new();
    let mut collect = |line| lines.push(line);
    let work = checkout::checkout(&source, &dest, &options, &mut collect);
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => {
                return fail(job, "actions/checkout timed out".to_owned());
            }
        },
        None => work.await,
    };
    for line in &lines {
        job.log(Some(event_step), &format!("{line}\n"));
    }
    match result {
        Ok(()) => (Conclusion::Success, checkout_outputs(&source)),
        Err(e) => fail(job, format!("actions/checkout: {e}")),
    }
}

fn checkout_outputs(source: &RepoSource) -> IndexMap<String, String> {
    let mut outputs = IndexMap::new();
    outputs.insert("ref".to_owned(), source.git_ref.clone().unwrap_or_default());
    outputs.insert("commit".to_owned(), source.sha.clone());
    outputs
}

/// `ref:` of actions/checkout: a branch, tag or commit of the source repository.
async fn resolve_ref(source: &RepoSource, wanted: &str) -> Result<RepoSource, String> {
    let candidates = if wanted.starts_with("refs/") {
        vec![wanted.to_owned()]
    } else {
        vec![
            format!("refs/heads/{wanted}"),
            format!("refs/tags/{wanted}"),
            wanted.to_owned(),
        ]
    };
    for candidate in candidates {
        let output = tokio::process::Command::new("git")
            .args(["ls-remote", "--", &source.url, &candidate])
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("could not run git: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(sha) = text.split_whitespace().next() {
            return Ok(RepoSource {
                url: source.url.clone(),
                sha: sha.to_owned(),
                git_ref: Some(candidate),
            });
        }
    }
    if wanted.len() >= 7 && wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(RepoSource {
            url: source.url.clone(),
            sha: wanted.to_owned(),
            git_ref: None,
        });
    }
    Err(format!("ref `{wanted}` was not found in {}", source.url))
}

/// `base/relative`, refusing paths that leave `base`.
pub(crate) fn contained_path(base: &std::path::Path, relative: &str) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let mut result = base.to_path_buf();
    for component in std::path::Path::new(relative).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => result.push(part),
            Component::ParentDir => {
                if result == base || !result.pop() || !result.starts_with(base) {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn uses_values_are_classified() {
        assert_eq!(classify("actions/checkout@v4"), ActionKind::Checkout);
        assert_eq!(classify("Actions/Checkout@main"), ActionKind::Checkout);
        assert_eq!(
            classify("./.github/actions/setup"),
            ActionKind::Local("./.github/actions/setup".into())
        );
        assert!(matches!(
            classify("actions/setup-node@v4"),
            ActionKind::Unavailable(reason) if reason.contains("actions/setup-node@v4")
        ));
        assert!(matches!(
            classify("docker://alpine:3"),
            ActionKind::Unavailable(reason) if reason.contains("Docker backend")
        ));
    }

    #[test]
    fn paths_cannot_leave_the_workspace() {
        let base = Path::new("/w");
        assert_eq!(contained_path(base, "."), Some("/w".into()));
        assert_eq!(contained_path(base, "a/b"), Some("/w/a/b".into()));
        assert_eq!(contained_path(base, "a/../b"), Some("/w/b".into()));
        assert_eq!(contained_path(base, ".."), None);
        assert_eq!(contained_path(base, "a/../../x"), None);
        assert_eq!(contained_path(base, "/etc"), None);
    }
}
