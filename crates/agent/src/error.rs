//! The agent's errors: what stops `Agent::run`.

use crate::client::ClientError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no credential for {server} in {state_dir} and no registration token: pass --token \
         once to register"
    )]
    NotRegistered { server: String, state_dir: PathBuf },
    #[error("registration failed: {0}")]
    Register(#[source] ClientError),
    #[error(
        "the server refused the agent's credential (revoked or unknown): remove {path} and \
         register again with a new token"
    )]
    CredentialRefused { path: PathBuf },
    #[error("the server refused to hand out jobs: {0}")]
    Poll(#[source] ClientError),
    #[error("the credential file {path} is not valid: {message}")]
    CredentialFile { path: PathBuf, message: String },
}

impl AgentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.into(),
            source,
        }
    }
}
