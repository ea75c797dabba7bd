//! Getting the repository into a job's workspace, the way `actions/checkout` does it: a git
//! repository whose `origin` is the source, holding the run's commit (shallow by default),
//! checked out on the run's branch, with untracked files cleaned.
//!
//! Every git invocation is an argv array (no shell) and refs and paths are passed after `--` or
//! as `+<sha>:<ref>` refspecs, so a branch named `--upload-pack=...` is never an option.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Where the code comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSource {
    /// Something `git fetch` understands: `file:///path/repo`, `https://...`.
    pub url: String,
    /// The commit to check out.
    pub sha: String,
    /// The full ref of the run (`refs/heads/main`, `refs/tags/v1`, `refs/pull/3/merge`).
    pub git_ref: Option<String>,
}

/// The inputs of `actions/checkout` that apply to a local source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// `fetch-depth`: commits to fetch; 0 means the whole history and all branches and tags.
    pub fetch_depth: u32,
    /// `clean`: `git clean -ffdx` and `git reset --hard` before checking out.
    pub clean: bool,
    /// `fetch-tags`.
    pub fetch_tags: bool,
    /// `submodules`: `None`, one level, or recursive.
    pub submodules: Submodules,
    /// `lfs`: run `git lfs pull` after checkout.
    pub lfs: bool,
}

impl Default for CheckoutOptions {
    fn default() -> Self {
        CheckoutOptions {
            fetch_depth: 1,
            clean: true,
            fetch_tags: false,
            submodules: Submodules::No,
            lfs: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submodules {
    No,
    Yes,
    Recursive,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("could not run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed ({status}):\n{stderr}")]
    Git {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("could not prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Puts `source` at `dest` (created if needed). A line of progress per git command goes to
/// `log`.
pub async fn checkout(
    source: &RepoSource,
    dest: &Path,
    options: &CheckoutOptions,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CheckoutError> {
    let io_err = |source| CheckoutError::Io {
        path: dest.to_owned(),
        source,
    };
    tokio::fs::create_dir_all(dest).await.map_err(io_err)?;

    let reuse = is_repository_of(dest, &source.url).await;
    if !reuse {
        // Not ours: start from an empty directory, as actions/checkout does.
        clear_directory(dest).await.map_err(io_err)?;
        // No template: the sample hooks and the description file are of no use to a job.
        git(dest, &["init", "-q", "--template="], log).await?;
        add_origin(dest, &source.url, log).await.map_err(io_err)?;
    } else if options.clean {
        git(dest, &["clean", "-ffdx"], log).await?;
        git(dest, &["reset", "--hard", "-q", "HEAD"], log)
            .await
            .ok();
    }

    let branch = source
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"));
    // With the whole history, `refs/remotes/origin/*` come from the branch refspec and the
    // commit lands in a ref of our own; shallow, the commit becomes the remote branch.
    let target_ref = match branch {
        Some(branch) if options.fetch_depth > 0 => format!("refs/remotes/origin/{branch}"),
        _ => "refs/gantry/checkout".to_owned(),
    };
    // A shallow checkout of a local repository borrows its objects instead of fetching them;
    // if that fails (the commit is not there...), the fetch says why.
    if !reuse
        && options.fetch_depth == 1
        && !options.fetch_tags
        && share_local_objects(dest, source, &target_ref, log).await
    {
        if check_out_commit(dest, branch, &source.sha, log)
            .await
            .is_ok()
        {
            return finish_checkout(dest, options, log).await;
        }
        unshare_local_objects(dest, &target_ref).await;
    }
    fetch_commit(dest, source, options, &target_ref, log).await?;
    check_out_commit(dest, branch, &source.sha, log).await?;
    finish_checkout(dest, options, log).await
}

/// `git fetch` of the commit from `origin` into `target_ref`, as deep as `options` say.
async fn fetch_commit(
    dest: &Path,
    source: &RepoSource,
    options: &CheckoutOptions,
    target_ref: &str,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CheckoutError> {
    let refspec = format!("+{}:{}", source.sha, target_ref);
    let depth_arg = format!("--depth={}", options.fetch_depth);
    // No automatic maintenance: a detached `git maintenance` would outlive the fetch for no
    // use in a workspace.
    let mut fetch: Vec<&str> = vec![
        "-c",
        "protocol.version=2",
        "-c",
        "maintenance.auto=false",
        "-c",
        "gc.auto=0",
        "fetch",
        "--prune",
        "--quiet",
    ];
    if options.fetch_tags || options.fetch_depth == 0 {
        fetch.push("--tags");
    } else {
        fetch.push("--no-tags");
    }
    if options.fetch_depth > 0 {
        fetch.push(&depth_arg);
    }
    fetch.extend(["--no-recurse-submodules", "origin"]);
    if options.fetch_depth == 0 {
        fetch.push("+refs/heads/*:refs/remotes/origin/*");
    }
    fetch.push(&refspec);
    git(dest, &fetch, log).await
}

/// `git checkout` of `sha`, on `branch` when there is one.
async fn check_out_commit(
    dest: &Path,
    branch: Option<&str>,
    sha: &str,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CheckoutError> {
    match branch {
        Some(branch) => git(dest, &["checkout", "-q", "--force", "-B", branch, sha], log).await,
        None => git(dest, &["checkout", "-q", "--force", "--detach", sha], log).await,
    }
}

/// For a `file://` source: instead of a shallow fetch of one commit (which packs and unpacks its
/// objects through three more git processes), borrow the source's object store
/// (`objects/info/alternates`), mark the commit as the shallow boundary and point the ref at it,
/// which is what the fetch leaves behind. Returns `false`, having changed nothing, when that does
/// not apply.
async fn share_local_objects(
    dest: &Path,
    source: &RepoSource,
    target_ref: &str,
    log: &mut (dyn FnMut(String) + Send),
) -> bool {
    let Some(path) = source.url.strip_prefix("file://") else {
        return false;
    };
    let full_sha =
        matches!(source.sha.len(), 40 | 64) && source.sha.bytes().all(|b| b.is_ascii_hexdigit());
    let safe_ref = target_ref.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    if !full_sha || !safe_ref {
        return false;
    }
    let source_dir = Path::new(path);
    let objects = if source_dir.join(".git").is_dir() {
        source_dir.join(".git").join("objects")
    } else {
        source_dir.join("objects")
    };
    let Ok(objects) = tokio::fs::canonicalize(&objects).await else {
        return false;
    };
    if !objects.is_dir() {
        return false;
    }
    let git_dir = dest.join(".git");
    let written: std::io::Result<()> = async {
        let info = git_dir.join("objects").join("info");
        tokio::fs::create_dir_all(&info).await?;
        tokio::fs::write(info.join("alternates"), format!("{}\n", objects.display())).await?;
        tokio::fs::write(git_dir.join("shallow"), format!("{}\n", source.sha)).await?;
        let ref_file = git_dir.join(target_ref);
        if let Some(parent) = ref_file.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(ref_file, format!("{}\n", source.sha)).await
    }
    .await;
    if written.is_err() {
        unshare_local_objects(dest, target_ref).await;
        return false;
    }
    log(format!(
        "Objects shared from {} (a local repository: nothing to fetch), shallow at {}",
        source.url, source.sha
    ));
    true
}

/// Undoes [`share_local_objects`].
async fn unshare_local_objects(dest: &Path, target_ref: &str) {
    let git_dir = dest.join(".git");
    for file in [
        git_dir.join("objects").join("info").join("alternates"),
        git_dir.join("shallow"),
        git_dir.join(target_ref),
    ] {
        let _ = tokio::fs::remove_file(file).await;
    }
}

/// Submodules and LFS, after the commit is checked out.
async fn finish_checkout(
    dest: &Path,
    options: &CheckoutOptions,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CheckoutError> {
    match options.submodules {
        Submodules::No => {}
        Submodules::Yes => {
            git(dest, &["submodule", "sync", "--quiet"], log).await?;
            git(dest, &["submodule", "update", "--init", "--force"], log).await?;
        }
        Submodules::Recursive => {
            git(dest, &["submodule", "sync", "--quiet", "--recursive"], log).await?;
            git(
                dest,
                &["submodule", "update", "--init", "--force", "--recursive"],
                log,
            )
            .await?;
        }
    }
    if options.lfs {
        git(dest, &["lfs", "pull"], log).await?;
    }
    Ok(())
}

async fn is_repository_of(dest: &Path, url: &str) -> bool {
    if !dest.join(".git").exists() {
        return false;
    }
    let output = tokio::process::Command::new("git")
        .args(["config", "--get", "remote.origin.url"])
        .current_dir(dest)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await;
    matches!(output, Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == url)
}

async fn clear_directory(dir: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if entry.file_type().await?.is_dir() {
            tokio::fs::remove_dir_all(&path).await?;
        } else {
            tokio::fs::remove_file(&path).await?;
        }
    }
    Ok(())
}

/// What `git remote add origin <url>` does, without starting a process: the remote's section
/// in the new repository's `.git/config`, the URL quoted as git's config syntax wants.
async fn add_origin(
    dest: &Path,
    url: &str,
    log: &mut (dyn FnMut(String) + Send),
) -> std::io::Result<()> {
    if url.contains(['\n', '\r', '\0']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the repository URL {url:?} contains a line break or NUL"),
        ));
    }
    let quoted = url.replace('\\', "\\\\").replace('"', "\\\"");
    let section = format!(
        "[remote \"origin\"]\n\turl = \"{quoted}\"\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    );
    let config = dest.join(".git").join("config");
    let mut text = tokio::fs::read_to_string(&config).await?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&section);
    tokio::fs::write(&config, text).await?;
    log(format!("Remote origin: {url}"));
    Ok(())
}

/// Runs git in `dir` and fails with its stderr when it fails.
async fn git(
    dir: &Path,
    args: &[&str],
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CheckoutError> {
    log(format!("[command]git {}", args.join(" ")));
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ADVICE", "0")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(CheckoutError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(CheckoutError::Git {
            args: args.join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// `file://` URL of a local repository path.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, script: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("sh");
        assert!(out.status.success(), "{script}: {:?}", out);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn repo() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        sh(
            dir.path(),
            "git init -q -b main && echo one > a && git add a && git commit -qm one \
             && echo two > b && git add b && git commit -qm two",
        );
        let head = sh(dir.path(), "git rev-parse HEAD");
        let first = sh(dir.path(), "git rev-parse HEAD~1");
        (dir, head, first)
    }

    #[tokio::test]
    async fn checks_out_the_run_commit_shallow_on_its_branch() {
        let (src, _head, first) = repo();
        let dest = tempfile::tempdir().expect("tempdir");
        let source = RepoSource {
            url: file_url(src.path()),
            sha: first.clone(),
            git_ref: Some("refs/heads/main".into()),
        };
        let mut lines = Vec::new();
        checkout(
            &source,
            dest.path(),
            &CheckoutOptions::default(),
            &mut |l| lines.push(l),
        )
        .await
        .expect("checkout");
        assert_eq!(sh(dest.path(), "git rev-parse HEAD"), first);
        assert_eq!(sh(dest.path(), "git branch --show-current"), "main");
        assert_eq!(sh(dest.path(), "git rev-list --count HEAD"), "1", "shallow");
        assert!(dest.path().join("a").exists());
        assert!(
            !dest.path().join("b").exists(),
            "b is not in the first commit"
        );
        // A local source lends its objects: nothing is fetched, and the result is what a
        // shallow fetch gives.
        assert!(
            lines.iter().any(|l| l.starts_with("Objects shared from")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains(" fetch ")), "{lines:?}");
        assert_eq!(
            sh(dest.path(), "git rev-parse --is-shallow-repository"),
            "true"
        );
        assert_eq!(
            sh(dest.path(), "git rev-parse refs/remotes/origin/main"),
            first
        );
        assert_eq!(sh(dest.path(), "git log --format=%s"), "one");
        assert_eq!(sh(dest.path(), "git status --porcelain"), "");
    }

    #[tokio::test]
    async fn a_second_checkout_cleans_untracked_files_and_local_changes() {
        let (src, head, _) = repo();
        let dest = tempfile::tempdir().expect("tempdir");
        let source = RepoSource {
            url: file_url(src.path()),
            sha: head.clone(),
            git_ref: Some("refs/tags/v1".into()),
        };
        let opts = CheckoutOptions::default();
        checkout(&source, dest.path(), &opts, &mut |_| {})
            .await
            .expect("first");
        std::fs::write(dest.path().join("junk"), "x").expect("write");
        std::fs::write(dest.path().join("a"), "changed").expect("write");
        checkout(&source, dest.path(), &opts, &mut |_| {})
            .await
            .expect("second");
        assert!(!dest.path().join("junk").exists());
        assert_eq!(
            std::fs::read_to_string(dest.path().join("a")).expect("a"),
            "one\n"
        );
        assert_eq!(sh(dest.path(), "git rev-parse HEAD"), head);
    }

    #[tokio::test]
    async fn fetch_depth_zero_brings_the_whole_history() {
        let (src, head, _) = repo();
        let dest = tempfile::tempdir().expect("tempdir");
        let source = RepoSource {
            url: file_url(src.path()),
            sha: head,
            git_ref: Some("refs/heads/main".into()),
        };
        let opts = CheckoutOptions {
            fetch_depth: 0,
            ..CheckoutOptions::default()
        };
        checkout(&source, dest.path(), &opts, &mut |_| {})
            .await
            .expect("checkout");
        assert_eq!(sh(dest.path(), "git rev-list --count HEAD"), "2");
    }

    #[tokio::test]
    async fn an_origin_url_with_quotes_and_backslashes_reads_back_unchanged() {
        let dest = tempfile::tempdir().expect("tempdir");
        git(dest.path(), &["init", "-q", "--template="], &mut |_| {})
            .await
            .expect("init");
        let url = r#"file:///tmp/a "quoted" \back\slash ;# dir"#;
        add_origin(dest.path(), url, &mut |_| {})
            .await
            .expect("origin");
        assert_eq!(sh(dest.path(), "git config --get remote.origin.url"), url);
        assert_eq!(
            sh(dest.path(), "git config --get remote.origin.fetch"),
            "+refs/heads/*:refs/remotes/origin/*"
        );
        assert!(
            add_origin(dest.path(), "file:///a\nb", &mut |_| {})
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_unknown_commit_is_a_clear_error() {
        let (src, _, _) = repo();
        let dest = tempfile::tempdir().expect("tempdir");
        let source = RepoSource {
            url: file_url(src.path()),
            sha: "0123456789012345678901234567890123456789".into(),
            git_ref: None,
        };
        let err = checkout(
            &source,
            dest.path(),
            &CheckoutOptions::default(),
            &mut |_| {},
        )
        .await
        .expect_err("no such commit");
        let text = err.to_string();
        assert!(
            text.contains(" fetch ") && text.contains("+0123456789012345678901234567890123456789:"),
            "the failing fetch of that commit is named: {text}"
        );
    }
}
