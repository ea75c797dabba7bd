//! A bare git mirror per repository, kept with the `git` CLI: fetch what a webhook names, read the
//! workflow files at a commit, and compute changed paths. Every git call is an argv array (no
//! shell); refs and shas from payloads are validated before they reach git, and positional
//! arguments follow `--` where git accepts it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Folders whose `*.yml`/`*.yaml` files are workflows (as in `gantry_workflow::load`).
pub const WORKFLOW_DIRS: &[&str] = &[".gantry/workflows", ".github/workflows"];

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("could not run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("`{0}` is not a valid git object name or ref")]
    InvalidName(String),
    #[error("could not create {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The mirrors under one folder: `<root>/<repository id>.git`.
#[derive(Clone, Debug)]
pub struct Mirrors {
    root: PathBuf,
}

impl Mirrors {
    pub fn new(root: impl Into<PathBuf>) -> Mirrors {
        Mirrors { root: root.into() }
    }

    fn path(&self, repository_id: &str) -> PathBuf {
        self.root.join(format!("{repository_id}.git"))
    }

    /// Creates the bare mirror if needed and points its `origin` at `clone_url`.
    pub async fn ensure(
        &self,
        repository_id: &str,
        clone_url: &str,
    ) -> Result<PathBuf, MirrorError> {
        let path = self.path(repository_id);
        if !path.join("HEAD").exists() {
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|source| MirrorError::Io {
                    path: path.clone(),
                    source,
                })?;
            git(&path, &["init", "-q", "--bare"]).await?;
            git(&path, &["remote", "add", "origin", clone_url]).await?;
        } else {
            git(&path, &["remote", "set-url", "origin", clone_url]).await?;
        }
        Ok(path)
    }

    /// Fetches branches, tags and pull request heads, and makes sure `sha` is present (fetching
    /// it by name if no ref carries it, e.g. a fork's commit).
    pub async fn fetch(
        &self,
        repository_id: &str,
        clone_url: &str,
        sha: Option<&str>,
    ) -> Result<(), MirrorError> {
        let path = self.ensure(repository_id, clone_url).await?;
        git(
            &path,
            &[
                "fetch",
                "--quiet",
                "--prune",
                "--no-recurse-submodules",
                "origin",
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
        )
        .await?;
        if let Some(sha) = sha {
            check_sha(sha)?;
            if !self.has_commit(repository_id, sha).await {
                // Pull request heads live under refs/pull on GitHub; a plain fetch of the
                // commit works where the server allows it (and always for local paths).
                let _ = git(
                    &path,
                    &[
                        "fetch",
                        "--quiet",
                        "origin",
                        "+refs/pull/*/head:refs/pull/*/head",
                    ],
                )
                .await;
                if !self.has_commit(repository_id, sha).await {
                    git(&path, &["fetch", "--quiet", "origin", sha]).await?;
                }
            }
        }
        Ok(())
    }

    /// Fetches `sha` from another repository (a fork) into this mirror.
    pub async fn fetch_from(
        &self,
        repository_id: &str,
        other_url: &str,
        sha: &str,
    ) -> Result<(), MirrorError> {
        check_sha(sha)?;
        let path = self.path(repository_id);
        if self.has_commit(repository_id, sha).await {
            return Ok(());
        }
        git(&path, &["fetch", "--quiet", "--", other_url, sha]).await
    }

    pub async fn has_commit(&self, repository_id: &str, sha: &str) -> bool {
        let spec = format!("{sha}^{{commit}}");
        git_output(&self.path(repository_id), &["cat-file", "-e", &spec])
            .await
            .is_ok()
    }

    /// The workflow files at `sha`: (path, text), sorted by path. Files that are not UTF-8 are
    /// returned lossily (the parser reports them).
    pub async fn read_workflows(
        &self,
        repository_id: &str,
        sha: &str,
    ) -> Result<Vec<(String, String)>, MirrorError> {
        check_sha(sha)?;
        let path = self.path(repository_id);
        let mut args = vec!["ls-tree", "-r", "--name-only", "-z", sha, "--"];
        args.extend(WORKFLOW_DIRS);
        let listing = git_output(&path, &args).await?;
        let mut files: Vec<String> = listing
            .split('\0')
            .filter(|p| {
                !p.is_empty()
                    && (p.ends_with(".yml") || p.ends_with(".yaml"))
                    && WORKFLOW_DIRS.iter().any(|dir| {
                        p.strip_prefix(dir)
                            .is_some_and(|rest| rest.matches('/').count() == 1)
                    })
            })
            .map(str::to_owned)
            .collect();
        files.sort();
        let mut out = Vec::new();
        for file in files {
            let object = format!("{sha}:{file}");
            let bytes = git_bytes(&path, &["cat-file", "blob", &object]).await?;
            out.push((file, String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(out)
    }

    /// Paths changed between two commits (`git diff --name-only base head`).
    pub async fn changed_paths(
        &self,
        repository_id: &str,
        base: &str,
        head: &str,
    ) -> Result<Vec<String>, MirrorError> {
        check_sha(base)?;
        check_sha(head)?;
        let text = git_output(
            &self.path(repository_id),
            &["diff", "--name-only", "-z", base, head, "--"],
        )
        .await?;
        Ok(text
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The merge base of two commits, if any.
    pub async fn merge_base(&self, repository_id: &str, a: &str, b: &str) -> Option<String> {
        if check_sha(a).is_err() || check_sha(b).is_err() {
            return None;
        }
        git_output(&self.path(repository_id), &["merge-base", a, b])
            .await
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Resolves a ref (`refs/heads/main`, `main`) to its commit.
    pub async fn resolve(&self, repository_id: &str, name: &str) -> Result<String, MirrorError> {
        check_ref(name)?;
        let spec = format!("{name}^{{commit}}");
        let out = git_output(
            &self.path(repository_id),
            &["rev-parse", "--verify", "-q", &spec],
        )
        .await?;
        Ok(out.trim().to_owned())
    }

    /// Files at `sha` in the whole tree (for the first push of a branch, where everything is new).
    pub async fn all_paths(
        &self,
        repository_id: &str,
        sha: &str,
    ) -> Result<Vec<String>, MirrorError> {
        check_sha(sha)?;
        let text = git_output(
            &self.path(repository_id),
            &["ls-tree", "-r", "--name-only", "-z", sha],
        )
        .await?;
        Ok(text
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// A commit id: 4 to 64 hex digits (abbreviated or full, sha1 or sha256).
pub fn check_sha(sha: &str) -> Result<(), MirrorError> {
    if (4..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(MirrorError::InvalidName(sha.to_owned()))
    }
}

/// A ref name git would accept, that cannot be read as an option.
pub fn check_ref(name: &str) -> Result<(), MirrorError> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
        || name.chars().any(|c| {
            c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if bad {
        Err(MirrorError::InvalidName(name.to_owned()))
    } else {
        Ok(())
    }
}

async fn git(dir: &Path, args: &[&str]) -> Result<(), MirrorError> {
    git_bytes(dir, args).await.map(|_| ())
}

async fn git_output(dir: &Path, args: &[&str]) -> Result<String, MirrorError> {
    let bytes = git_bytes(dir, args).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn git_bytes(dir: &Path, args: &[&str]) -> Result<Vec<u8>, MirrorError> {
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ADVICE", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(MirrorError::Spawn)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(MirrorError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_be_options_are_refused() {
        assert!(check_ref("refs/heads/main").is_ok());
        assert!(check_ref("feature/x-1").is_ok());
        assert!(check_ref("--upload-pack=touch pwned").is_err());
        assert!(check_ref("-oProxyCommand=x").is_err());
        assert!(check_ref("a..b").is_err());
        assert!(check_ref("a b").is_err());
        assert!(check_sha("0123abcd").is_ok());
        assert!(check_sha("--all").is_err());
        assert!(check_sha("xyz").is_err());
    }

    fn sh(dir: &Path, script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("sh");
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[tokio::test]
    async fn workflows_and_changed_paths_come_from_the_mirror() {
        let src = tempfile::tempdir().expect("tempdir");
        sh(
            src.path(),
            "git init -q -b main && mkdir -p .github/workflows/sub && \
             echo 'on: push' > .github/workflows/ci.yml && echo x > .github/workflows/notes.txt && \
             echo 'on: push' > .github/workflows/sub/nested.yml && echo a > a.txt && \
             git add -A && git commit -qm one && echo b > b.txt && git add -A && git commit -qm two",
        );
        let head = sh(src.path(), "git rev-parse HEAD");
        let first = sh(src.path(), "git rev-parse HEAD~1");
        let root = tempfile::tempdir().expect("tempdir");
        let mirrors = Mirrors::new(root.path());
        let url = format!("file://{}", src.path().display());
        mirrors
            .fetch("repo_1", &url, Some(&head))
            .await
            .expect("fetch");
        let files = mirrors.read_workflows("repo_1", &head).await.expect("read");
        assert_eq!(
            files,
            vec![(
                ".github/workflows/ci.yml".to_owned(),
                "on: push\n".to_owned()
            )]
        );
        assert_eq!(
            mirrors
                .changed_paths("repo_1", &first, &head)
                .await
                .expect("diff"),
            vec!["b.txt".to_owned()]
        );
        assert_eq!(
            mirrors
                .resolve("repo_1", "refs/heads/main")
                .await
                .expect("resolve"),
            head
        );
        assert_eq!(
            mirrors.merge_base("repo_1", &first, &head).await.as_deref(),
            Some(first.as_str())
        );
        // A second fetch reuses the mirror.
        mirrors
            .fetch("repo_1", &url, Some(&first))
            .await
            .expect("refetch");
    }
}
