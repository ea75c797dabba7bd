//! The repository a command works on: its root, git facts (HEAD, branch), and its workflow
//! files loaded with paths relative to the root, as GitHub names them.

use anyhow::Context as _;
use gantry_workflow::Diagnostic;
use gantry_workflow::load::{LoadedWorkflow, discover_workflows, load_workflow};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository (or a plain directory) and what git says about it.
#[derive(Clone, Debug)]
pub struct Repo {
    /// The top of the git work tree, or the current directory outside git.
    pub root: PathBuf,
    /// Whether `root` is a git work tree.
    pub is_git: bool,
    /// HEAD's commit and branch, read together with the root (one git process instead of
    /// three); `None` when that failed (no commit yet, or not git): then git is asked again.
    head: Option<HeadFacts>,
}

#[derive(Clone, Debug)]
struct HeadFacts {
    sha: String,
    branch: Option<String>,
}

impl Repo {
    /// The repository containing `dir`.
    pub fn discover(dir: &Path) -> Repo {
        // One process for the usual case: the root, HEAD's commit and its branch.
        if let Some(text) = git_output(
            dir,
            &[
                "rev-parse",
                "--show-toplevel",
                "HEAD",
                "--symbolic-full-name",
                "HEAD",
            ],
        ) {
            let mut lines = text.lines();
            if let (Some(top), Some(sha), Some(full)) = (lines.next(), lines.next(), lines.next())
                && sha.len() >= 40
                && sha.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Repo {
                    root: PathBuf::from(top),
                    is_git: true,
                    head: Some(HeadFacts {
                        sha: sha.to_owned(),
                        branch: full.strip_prefix("refs/heads/").map(str::to_owned),
                    }),
                };
            }
        }
        // No commit yet, or not a repository at all.
        match git_output(dir, &["rev-parse", "--show-toplevel"]) {
            Some(top) => Repo {
                root: PathBuf::from(top),
                is_git: true,
                head: None,
            },
            None => Repo {
                root: dir.to_path_buf(),
                is_git: false,
                head: None,
            },
        }
    }

    /// The repository of the current directory.
    pub fn current() -> anyhow::Result<Repo> {
        let cwd = std::env::current_dir().context("could not read the current directory")?;
        Ok(Repo::discover(&cwd))
    }

    /// `git <args>` in the repository, trimmed stdout, or `None` when git fails.
    pub fn git(&self, args: &[&str]) -> Option<String> {
        if !self.is_git {
            return None;
        }
        git_output(&self.root, args)
    }

    /// The commit at HEAD.
    pub fn head_sha(&self) -> Option<String> {
        if let Some(head) = &self.head {
            return Some(head.sha.clone());
        }
        self.git(&["rev-parse", "--verify", "-q", "HEAD"])
    }

    /// The checked-out branch (`None` when HEAD is detached or outside git).
    pub fn current_branch(&self) -> Option<String> {
        if let Some(head) = &self.head {
            return head.branch.clone();
        }
        self.git(&["symbolic-ref", "-q", "--short", "HEAD"])
    }

    /// `owner/name` from the `origin` remote URL, else the folder name under `local/`.
    pub fn name(&self) -> String {
        if let Some(url) = self.git(&["config", "--get", "remote.origin.url"])
            && let Some(name) = owner_and_name(&url)
        {
            return name;
        }
        let folder = self
            .root
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repository".to_owned());
        format!("local/{folder}")
    }

    /// A path as shown to the user: relative to the repository root when inside it.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// Loads `paths`, or every workflow of the repository when `paths` is empty. Workflow file
    /// names are relative to the root (`.github/workflows/ci.yml`).
    pub fn load_workflows(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<LoadedWorkflow>> {
        let files = if paths.is_empty() {
            let found = discover_workflows(&self.root).with_context(|| {
                format!(
                    "could not list the workflow folders of {}",
                    self.root.display()
                )
            })?;
            if found.is_empty() {
                anyhow::bail!(
                    "no workflow files in {}: looked for .github/workflows/*.yml and \
                     .gantry/workflows/*.yml (or give files as arguments)",
                    self.root.display()
                );
            }
            found
        } else {
            paths.to_vec()
        };
        let mut loaded = Vec::new();
        for file in files {
            let absolute = if file.is_absolute() {
                file.clone()
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&file))
                    .unwrap_or(file.clone())
            };
            let mut workflow = load_workflow(&absolute)
                .with_context(|| format!("could not read {}", file.display()))?;
            let shown = self.display_path(&absolute);
            if let Some(model) = workflow.parsed.workflow.as_mut() {
                model.file = shown;
            }
            loaded.push(workflow);
        }
        Ok(loaded)
    }
}

/// `owner/name` of a git remote URL (`https://host/owner/name.git`, `git@host:owner/name`).
fn owner_and_name(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let path = trimmed
        .rsplit_once(':')
        .filter(|(scheme, _)| !scheme.contains('/') && !scheme.starts_with("http"))
        .map(|(_, p)| p)
        .unwrap_or(trimmed);
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{name}"))
}

fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Errors and warnings of a set of workflow files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiagnosticCount {
    pub errors: usize,
    pub warnings: usize,
}

/// Renders the diagnostics of `loaded` to stderr (colour on a terminal) and counts them.
pub fn print_diagnostics(repo: &Repo, loaded: &[LoadedWorkflow], color: bool) -> DiagnosticCount {
    let mut count = DiagnosticCount::default();
    let mut stderr = anstream::stderr();
    for workflow in loaded {
        let shown = repo.display_path(&workflow.path);
        for diagnostic in &workflow.parsed.diagnostics {
            count_one(&mut count, diagnostic);
            let text = diagnostic.render(&shown, &workflow.source, color);
            let _ = std::io::Write::write_all(&mut stderr, text.as_bytes());
            let _ = std::io::Write::write_all(&mut stderr, b"\n");
        }
    }
    count
}

fn count_one(count: &mut DiagnosticCount, diagnostic: &Diagnostic) {
    if diagnostic.is_error() {
        count.errors += 1;
    } else {
        count.warnings += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_give_owner_and_name() {
        assert_eq!(
            owner_and_name("https://github.com/acme/widgets.git").as_deref(),
            Some("acme/widgets")
        );
        assert_eq!(
            owner_and_name("git@github.com:acme/widgets.git").as_deref(),
            Some("acme/widgets")
        );
        assert_eq!(
            owner_and_name("file:///srv/git/acme/widgets").as_deref(),
            Some("acme/widgets")
        );
        assert_eq!(owner_and_name("widgets"), None);
    }
}
