//! The agent's main loop: register (once; the credential is kept), then poll for a job
//! whenever a slot is free, run each job in its own task, and stop as the [`Shutdown`] says.

use crate::backoff::Backoff;
use crate::client::{Client, ClientError, with_retries};
use crate::config::AgentConfig;
use crate::credential::{
    Credential, create_private_dir, credential_path, load_credential, save_credential,
};
use crate::error::AgentError;
use crate::job::{JobContext, run_assignment};
use crate::shutdown::Shutdown;
use crate::uploader::Report;
use gantry_protocol::agent::{PROTOCOL_VERSION, PollRequest, RegisterRequest};
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A Gantry agent.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Runs the agent until `shutdown` says to stop (or the server refuses its credential).
    ///
    /// Drain: no poll after it; running jobs finish and are reported (heartbeats go on); then
    /// this returns. Cancel: running jobs are cancelled through the runner, reported as
    /// cancelled by the agent (`agent_stop`), and this returns.
    pub async fn run(config: AgentConfig, shutdown: Shutdown) -> Result<(), AgentError> {
        validate(&config)?;
        create_private_dir(&config.state_dir)?;
        std::fs::create_dir_all(&config.work_dir)
            .map_err(|e| AgentError::io(&config.work_dir, e))?;
        remove_leftover_jobs(&config.work_dir);
        let client = Client::new(&config).map_err(|e| AgentError::Config(e.to_string()))?;
        let stop_registering = CancellationToken::new();
        let credential = tokio::select! {
            credential = obtain_credential(&client, &config, &stop_registering) => credential?,
            _ = shutdown.drained() => {
                stop_registering.cancel();
                return Ok(());
            }
        };
        tracing::info!(agent = %credential.agent_id, server = %config.server_url, "agent ready");
        let client = client.with_credential(&credential.credential);
        let config = Arc::new(config);
        let ctx = JobContext {
            client: client.clone(),
            config: config.clone(),
            shutdown: shutdown.clone(),
            slots: Arc::default(),
        };
        let result = poll_loop(&ctx, &shutdown).await;
        if shutdown.is_draining() {
            tracing::info!("agent stopping");
        }
        if !matches!(result, Err(AgentError::CredentialRefused { .. })) {
            // The server shows the agent offline now rather than after its silence; a server
            // that does not answer at once finds out that way.
            if let Err(error) = client.sign_off(std::time::Duration::from_secs(2)).await {
                tracing::debug!("could not tell the server the agent is stopping: {error}");
            }
        }
        result
    }
}

fn validate(config: &AgentConfig) -> Result<(), AgentError> {
    if config.concurrency == 0 {
        return Err(AgentError::Config("concurrency must be at least 1".into()));
    }
    if config.name.trim().is_empty() {
        return Err(AgentError::Config("the agent's name is empty".into()));
    }
    Ok(())
}

/// The stored credential for this server, or a new one from registration.
async fn obtain_credential(
    client: &Client,
    config: &AgentConfig,
    stop: &CancellationToken,
) -> Result<Credential, AgentError> {
    let server = normalize_url(&config.server_url);
    if let Some(stored) = load_credential(&config.state_dir)? {
        if normalize_url(&stored.server_url) == server {
            return Ok(stored);
        }
        tracing::warn!(
            "the stored credential belongs to {}; registering with {server}",
            stored.server_url
        );
    }
    let Some(token) = config.registration_token.clone() else {
        return Err(AgentError::NotRegistered {
            server: config.server_url.clone(),
            state_dir: config.state_dir.clone(),
        });
    };
    let body = RegisterRequest {
        token,
        name: config.name.clone(),
        labels: config.labels.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        concurrency: u32::try_from(config.concurrency).unwrap_or(u32::MAX),
        protocol: PROTOCOL_VERSION,
    };
    let answer = with_retries(config.retry, stop, "registration", || {
        client.register(&body)
    })
    .await
    .map_err(AgentError::Register)?;
    let credential = Credential {
        server_url: server,
        agent_id: answer.agent_id,
        credential: answer.credential,
    };
    save_credential(&config.state_dir, &credential)?;
    tracing::info!(agent = %credential.agent_id, "registered");
    Ok(credential)
}

/// Removes the directories of jobs an earlier run of the agent left behind (it was killed):
/// only directories laid out as a job's (`log` and `workspace` inside).
fn remove_leftover_jobs(work_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_job = entry.file_type().is_ok_and(|t| t.is_dir())
            && path.join("log").is_file()
            && path.join("workspace").is_dir();
        if is_job {
            tracing::info!(path = %path.display(), "removing a job directory left by an earlier run");
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), "could not remove it: {error}");
            }
        }
    }
}

fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// Polls while a slot is free and the agent is not draining; then waits for the running jobs.
async fn poll_loop(ctx: &JobContext, shutdown: &Shutdown) -> Result<(), AgentError> {
    let concurrency = ctx.config.concurrency;
    let mut jobs: JoinSet<Report> = JoinSet::new();
    let mut backoff = Backoff::new(ctx.config.retry);
    let mut failure = None;
    let mut short = false;
    while !shutdown.is_draining() {
        while let Some(done) = jobs.try_join_next() {
            log_join(done);
        }
        if jobs.len() >= concurrency {
            tokio::select! {
                done = jobs.join_next() => if let Some(done) = done { log_join(done) },
                _ = shutdown.drained() => {}
            }
            continue;
        }
        if let Some(free) = short_of_space(&ctx.config) {
            if !short {
                short = true;
                tracing::warn!(
                    work_dir = %ctx.config.work_dir.display(),
                    "only {} MiB free under the work directory, {} MiB needed: taking no job \
                     until space is freed",
                    free / (1024 * 1024),
                    ctx.config.min_free_space / (1024 * 1024)
                );
            }
            tokio::select! {
                done = jobs.join_next(), if !jobs.is_empty() => if let Some(done) = done { log_join(done) },
                _ = tokio::time::sleep(ctx.config.free_space_recheck) => {}
                _ = shutdown.drained() => {}
            }
            continue;
        }
        if short {
            short = false;
            tracing::info!("enough space under the work directory again: taking jobs");
        }
        let body = PollRequest {
            running: u32::try_from(jobs.len()).unwrap_or(u32::MAX),
        };
        // A poll in flight when draining starts is abandoned: the agent takes no new job.
        let polled = tokio::select! {
            polled = ctx.client.poll(&body) => polled,
            _ = shutdown.drained() => break,
        };
        match polled {
            Ok(Some(assignment)) => {
                backoff.reset();
                tracing::info!(job = %assignment.job_id, "job assigned");
                jobs.spawn(run_assignment(ctx.clone(), assignment));
            }
            Ok(None) => backoff.reset(),
            Err(error) if error.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    "poll failed ({} in a row), retrying in {} ms: {error}",
                    backoff.failures(),
                    delay.as_millis()
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.drained() => {}
                }
            }
            Err(ClientError::Unauthorized { .. }) => {
                failure = Some(AgentError::CredentialRefused {
                    path: credential_path(&ctx.config.state_dir),
                });
                break;
            }
            Err(error) => {
                failure = Some(AgentError::Poll(error));
                break;
            }
        }
    }
    if !jobs.is_empty() {
        tracing::info!(running = jobs.len(), "waiting for running jobs");
    }
    while let Some(done) = jobs.join_next().await {
        log_join(done);
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The bytes free under the work directory, when fewer than the configured minimum. A
/// filesystem that cannot be asked is not held against the agent.
fn short_of_space(config: &AgentConfig) -> Option<u64> {
    if config.min_free_space == 0 {
        return None;
    }
    let stat = nix::sys::statvfs::statvfs(&config.work_dir).ok()?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    (free < config.min_free_space).then_some(free)
}

fn log_join(done: Result<Report, tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!("a job's task failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_job_directories_are_removed_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("job_1");
        std::fs::create_dir_all(job.join("workspace")).expect("job");
        std::fs::write(job.join("log"), "x").expect("log");
        let other = dir.path().join("notes");
        std::fs::create_dir_all(&other).expect("other");
        std::fs::write(other.join("log"), "x").expect("log");
        remove_leftover_jobs(dir.path());
        assert!(!job.exists());
        assert!(other.join("log").exists());
    }
}
