//! The agent's credential on disk: `<state_dir>/credential.json`, mode 0600, written once at
//! registration and reused across restarts.

use crate::error::AgentError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "credential.json";

/// What registration gave the agent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The server it was issued by; another server means another registration.
    pub server_url: String,
    pub agent_id: String,
    /// The bearer credential.
    pub credential: String,
}

impl fmt::Debug for Credential {
    // Never print the credential itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("server_url", &self.server_url)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// The credential file of a state directory.
pub fn credential_path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the stored credential, if any. A file readable by others is tightened to 0600.
pub fn load_credential(state_dir: &Path) -> Result<Option<Credential>, AgentError> {
    let path = credential_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AgentError::io(&path, e)),
    };
    let metadata = std::fs::metadata(&path).map_err(|e| AgentError::io(&path, e))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "credential file was readable by others; setting mode 0600");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AgentError::io(&path, e))?;
    }
    let credential: Credential =
        serde_json::from_str(&text).map_err(|e| AgentError::CredentialFile {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok(Some(credential))
}

/// Writes the credential (mode 0600, through a temporary file and a rename, so a crash never
/// leaves half a file). Creates the state directory (mode 0700) when needed.
pub fn save_credential(state_dir: &Path, credential: &Credential) -> Result<(), AgentError> {
    create_private_dir(state_dir)?;
    let path = credential_path(state_dir);
    let temp = state_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let text = serde_json::to_vec_pretty(credential).map_err(|e| AgentError::CredentialFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        AgentError::io(&path, e)
    })
}

/// Creates a directory only its owner can enter (an existing one is left as it is).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), AgentError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AgentError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credential_is_private_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let credential = Credential {
            server_url: "http://127.0.0.1:1".into(),
            agent_id: "agt_1".into(),
            credential: "secret".into(),
        };
        save_credential(&state, &credential).expect("saved");
        let mode = std::fs::metadata(credential_path(&state))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_credential(&state).expect("loads"), Some(credential));
        assert!(!format!("{:?}", load_credential(&state)).contains("secret"));
    }

    #[test]
    fn missing_credential_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_credential(dir.path()).expect("no error"), None);
    }
}
