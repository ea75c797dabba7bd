//! Helpers shared by the test suites of several Gantry crates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small tmpfs mounted on a temporary directory, for tests of full disks; unmounted when
/// dropped. Only root can mount one (CI runs as root).
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A `mib` MiB tmpfs. As root, a mount that fails is a test failure; otherwise the test
    /// is skipped (`None`, and it says so).
    pub fn mount(mib: u32) -> Option<SmallDisk> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "root could not mount a tmpfs: {status}");
        Some(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of the disk with one file; answers its path (remove it to free the
    /// space).
    pub fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let status = Command::new("dd")
            .args(["if=/dev/zero", "bs=16k"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status()
            .expect("dd runs");
        assert!(!status.success(), "dd stops when the disk is full");
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
