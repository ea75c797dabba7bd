//! The files a step is given: its script and the five file-command files (`GITHUB_OUTPUT`,
//! `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`).
//!
//! Every step gets names of its own, as on GitHub, but the files behind them are recycled within
//! a job: a file the finished step left as it was given (an empty regular file with its original
//! permissions: the usual case) is renamed for the next step instead of being deleted and
//! created again. Creating a file costs far more than renaming one on some filesystems (ext4
//! without a journal scans the recently deleted inodes on every creation; measured at 1.4 ms per
//! step of six files), and a rename creates nothing. A file the step wrote to, replaced, or
//! changed the permissions of is removed, and the next step gets a new one. Whatever is left goes
//! with the job's temporary directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The per-step file-command files.
pub(crate) struct FileCommands {
    pub(crate) output: PathBuf,
    pub(crate) env: PathBuf,
    pub(crate) path: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) summary: PathBuf,
}

impl FileCommands {
    pub(crate) fn all(&self) -> [&PathBuf; 5] {
        [
            &self.output,
            &self.env,
            &self.path,
            &self.state,
            &self.summary,
        ]
    }
}

/// A handle on the step files kept between steps, and between jobs when the caller passes the
/// same handle to the jobs it runs one after the other in the same temporary directory (an
/// agent's job slot). Clones share the files. [`StepFiles::kept`] lists them (with the event
/// file, which the next job overwrites), so the caller can clean the temporary directory between
/// jobs without removing them.
#[derive(Clone, Default)]
pub struct StepFiles(Arc<Mutex<StepFilePool>>);

impl std::fmt::Debug for StepFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StepFiles").field(&self.kept()).finish()
    }
}

impl StepFiles {
    /// The files kept for the next step or job.
    pub fn kept(&self) -> Vec<PathBuf> {
        let pool = self.lock();
        pool.script
            .iter()
            .chain(pool.commands.iter().flatten())
            .chain(pool.event.iter())
            .cloned()
            .collect()
    }

    /// Forgets the kept files (they were removed, or their directory is given up).
    pub fn forget(&self) {
        let mut pool = self.lock();
        pool.script = None;
        pool.commands = None;
        pool.event = None;
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, StepFilePool> {
        // The pool holds paths only: a panic elsewhere cannot leave it inconsistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Files of finished steps, kept for the next step.
#[derive(Default)]
pub(crate) struct StepFilePool {
    script: Option<PathBuf>,
    commands: Option<Vec<PathBuf>>,
    /// The job's event file (`GITHUB_EVENT_PATH`), overwritten by the next job.
    event: Option<PathBuf>,
    /// Makes every name handed out unique, also across the jobs sharing the pool.
    counter: u64,
}

/// Writes `contents` to `path`, reusing the file there if it is a regular file: it is
/// overwritten and then cut to length, never truncated to zero first (which frees its blocks
/// and allocates them again), and never written through a link.
fn overwrite(path: &Path, contents: &[u8]) -> io::Result<()> {
    let reused = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.set_len(contents.len() as u64)
        });
    match reused {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::write(path, contents),
        Err(_) => {
            let _ = fs::remove_file(path);
            fs::write(path, contents)
        }
    }
}

impl StepFilePool {
    /// Writes the job's event payload to `path`, over the previous job's.
    pub(crate) fn event(&mut self, path: &Path, contents: &[u8]) -> io::Result<()> {
        overwrite(path, contents)?;
        self.event = Some(path.to_owned());
        Ok(())
    }

    /// A name no other file of this pool had: `<prefix>_<pid>_<n>`.
    pub(crate) fn unique_name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}_{}", std::process::id(), self.counter)
    }

    /// Writes a step's script to `path`, into a spare script file when there is one.
    pub(crate) fn script(&mut self, path: &Path, contents: &[u8]) -> io::Result<()> {
        if let Some(spare) = self.script.take()
            && fs::rename(&spare, path).is_ok()
        {
            return overwrite(path, contents);
        }
        fs::write(path, contents)
    }

    /// Takes back a finished step's script file.
    pub(crate) fn give_back_script(&mut self, path: &Path) {
        if recyclable(path, None) {
            self.script = Some(path.to_owned());
        } else {
            let _ = fs::remove_file(path);
        }
    }

    /// Empty file-command files for a step, in `dir`, their names ending in `suffix`.
    pub(crate) fn commands(&mut self, dir: &Path, suffix: &str) -> io::Result<FileCommands> {
        let files = FileCommands {
            output: dir.join(format!("set_output_{suffix}")),
            env: dir.join(format!("set_env_{suffix}")),
            path: dir.join(format!("add_path_{suffix}")),
            state: dir.join(format!("save_state_{suffix}")),
            summary: dir.join(format!("step_summary_{suffix}")),
        };
        let mut spares = self.commands.take().unwrap_or_default().into_iter();
        for path in files.all() {
            let renamed = spares
                .next()
                .is_some_and(|spare| fs::rename(spare, path).is_ok());
            if renamed {
                continue;
            }
            // The directory is made by the first step, or again when a step removed it.
            if let Err(e) = File::create(path) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
                fs::create_dir_all(dir)?;
                File::create(path)?;
            }
        }
        Ok(files)
    }

    /// Takes back a finished step's file-command files after they were read: the ones left
    /// empty and unchanged serve the next step, the others are removed.
    pub(crate) fn give_back_commands(&mut self, files: FileCommands) {
        let mut spares = Vec::with_capacity(5);
        for path in files.all() {
            if recyclable(path, Some(0)) {
                spares.push(path.clone());
            } else {
                let _ = fs::remove_file(path);
            }
        }
        self.commands = Some(spares);
    }
}

/// Whether `path` is still what the runner handed out: a regular file (not a link, a directory
/// or a FIFO) with no other name, owned by and writable for this user, and, when given, of the
/// expected length.
fn recyclable(path: &Path, len: Option<u64>) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    meta.file_type().is_file()
        && meta.nlink() == 1
        && meta.uid() == nix::unistd::geteuid().as_raw()
        && meta.mode() & 0o200 != 0
        && len.is_none_or(|len| meta.len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn inode(path: &Path) -> u64 {
        fs::metadata(path).expect("file exists").ino()
    }

    #[test]
    fn empty_command_files_are_renamed_for_the_next_step() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut pool = StepFilePool::default();
        let first = pool.commands(dir.path(), "1").expect("files");
        let inodes: Vec<u64> = first.all().iter().map(|p| inode(p)).collect();
        pool.give_back_commands(first);
        let second = pool.commands(dir.path(), "2").expect("files");
        let again: Vec<u64> = second.all().iter().map(|p| inode(p)).collect();
        assert_eq!(inodes, again, "the same files under new names");
        assert!(second.output.ends_with("set_output_2"));
        for path in second.all() {
            assert_eq!(fs::metadata(path).expect("exists").len(), 0);
        }
        // The first step's names are gone: a late writer opening them by name reaches nothing
        // the runner reads.
        assert!(!dir.path().join("set_output_1").exists());
    }

    #[test]
    fn a_removed_directory_is_made_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cmd_dir = dir.path().join("_runner_file_commands");
        let mut pool = StepFilePool::default();
        let first = pool.commands(&cmd_dir, "1").expect("files");
        fs::remove_dir_all(&cmd_dir).expect("a step removes the directory");
        pool.give_back_commands(first);
        let second = pool.commands(&cmd_dir, "2").expect("files");
        for path in second.all() {
            assert_eq!(fs::metadata(path).expect("exists").len(), 0);
        }
    }

    #[test]
    fn written_replaced_or_locked_files_are_not_recycled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep me").expect("write");
        for change in ["write", "symlink", "chmod", "remove"] {
            let mut pool = StepFilePool::default();
            let cmd_dir = dir.path().join(change);
            let first = pool.commands(&cmd_dir, "1").expect("files");
            let before = inode(&first.env);
            match change {
                "write" => fs::write(&first.env, "A=1\n").expect("write"),
                "symlink" => {
                    fs::remove_file(&first.env).expect("rm");
                    std::os::unix::fs::symlink(&outside, &first.env).expect("symlink");
                }
                "chmod" => fs::set_permissions(&first.env, fs::Permissions::from_mode(0o444))
                    .expect("chmod"),
                _ => fs::remove_file(&first.env).expect("rm"),
            }
            pool.give_back_commands(first);
            let second = pool.commands(&cmd_dir, "2").expect("files");
            let meta = fs::symlink_metadata(&second.env).expect("exists");
            assert!(meta.file_type().is_file(), "{change}: a regular file");
            assert_eq!(meta.len(), 0, "{change}: empty");
            assert!(meta.mode() & 0o200 != 0, "{change}: writable");
            assert_ne!(meta.ino(), before, "{change}: a new file");
            assert!(
                !cmd_dir.join("set_env_1").exists(),
                "{change}: old name gone"
            );
        }
        assert_eq!(fs::read_to_string(&outside).expect("read"), "keep me");
    }

    #[test]
    fn a_script_file_is_rewritten_in_place_but_never_through_a_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut pool = StepFilePool::default();
        let one = dir.path().join("step_1.sh");
        pool.script(&one, b"echo a long first script\n")
            .expect("write");
        let ino = inode(&one);
        pool.give_back_script(&one);
        let two = dir.path().join("step_2.sh");
        pool.script(&two, b"true\n").expect("write");
        assert_eq!(inode(&two), ino);
        assert_eq!(fs::read(&two).expect("read"), b"true\n");
        assert!(!one.exists());

        // A step that replaced its script with a link: the link is removed, its target kept.
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep me").expect("write");
        fs::remove_file(&two).expect("rm");
        std::os::unix::fs::symlink(&outside, &two).expect("symlink");
        pool.give_back_script(&two);
        let three = dir.path().join("step_3.sh");
        pool.script(&three, b"echo three\n").expect("write");
        assert_eq!(fs::read(&three).expect("read"), b"echo three\n");
        assert!(
            !fs::symlink_metadata(&three)
                .expect("exists")
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&outside).expect("read"), "keep me");
    }
}
