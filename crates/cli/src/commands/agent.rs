//! `gantry agent`: runs jobs for a Gantry server on this machine. Registers once with a token
//! (the credential is kept in the state directory), then pulls jobs; SIGTERM drains, a second
//! SIGTERM or SIGQUIT cancels the running jobs and exits.

use crate::exit::CommandError;
use anyhow::Context as _;
use clap::Args;
use gantry_agent::{Agent, AgentConfig, AgentError, Shutdown};
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Run jobs for a Gantry server on this machine.
///
/// The agent registers with the server once, using a registration token, and keeps the
/// credential it gets in its state directory (mode 0600); later starts reuse it and need no
/// token. It then asks the server for jobs whose `runs-on` its labels match, runs up to
/// --concurrency of them at once (each in a fresh directory under the work directory, steps as
/// host processes), streams their logs back with secrets masked, and reports their results,
/// retrying through network and server outages.
///
/// Stopping: SIGTERM (or Ctrl-C) drains: no new job is taken, running jobs finish and are
/// reported, then the agent exits. A second SIGTERM, or SIGQUIT, cancels the running jobs,
/// reports them cancelled by the agent (the server may retry them), and exits.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry agent --server https://ci.example.com --token $TOKEN --labels linux,x64
  gantry agent --server https://ci.example.com              # already registered
  gantry agent --server http://10.0.0.5:8080 --token $TOKEN --concurrency 4 --name build-7
  GANTRY_AGENT_TOKEN=... gantry agent --server https://ci.example.com --state-dir /var/lib/gantry

Exit status: 0 after a drain or a forced stop, 1 when the agent failed (credential refused,
server unusable), 2 for usage errors.")]
pub struct AgentArgs {
    /// The server's URL.
    #[arg(long, env = "GANTRY_SERVER", value_name = "URL")]
    pub server: String,
    /// Registration token, exchanged for the agent's own credential on first start.
    #[arg(
        long,
        env = "GANTRY_AGENT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Labels this agent offers to `runs-on`, comma-separated. Default: this machine's OS and
    /// architecture (`linux,x64`).
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// The agent's name on the server. Default: the host name.
    #[arg(long)]
    pub name: Option<String>,
    /// Where the agent keeps its credential. Default: $XDG_STATE_HOME/gantry/agent
    /// (~/.local/state/gantry/agent).
    #[arg(long, env = "GANTRY_AGENT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where jobs run: one directory per job slot (`slot_<n>`), emptied after each job; one
    /// work directory per agent (an agent empties what it finds there when it starts).
    /// Default: <state-dir>/work.
    #[arg(long, env = "GANTRY_AGENT_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Seconds a cancelled job may go on (`always()` steps) before it is stopped at once.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub cancel_grace: f64,
    /// Take no job while the work directory's filesystem has less than this many MiB free
    /// (0: no check); the agent says so in its log and takes jobs again once space is freed.
    #[arg(long, default_value_t = 200, value_name = "MIB")]
    pub min_free_mib: u64,
}

pub fn cmd_agent(args: AgentArgs) -> Result<(), CommandError> {
    let config = build_config(args)?;
    init_logging();
    // One job at a time needs no second thread: its steps are processes of their own, and one
    // thread spares the wake-ups between threads (a fifth of an agent's CPU per short job).
    let runtime = if config.concurrency <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = runtime
        .context("could not start the async runtime")
        .map_err(CommandError::Internal)?;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        let signals = watch_signals(shutdown.clone())
            .context("could not listen for signals")
            .map_err(CommandError::Internal)?;
        let result = Agent::run(config, shutdown).await;
        signals.abort();
        result.map_err(|error| match error {
            AgentError::Config(_) | AgentError::NotRegistered { .. } => {
                CommandError::Usage(error.into())
            }
            other => CommandError::Internal(other.into()),
        })
    })
}

fn build_config(args: AgentArgs) -> Result<AgentConfig, CommandError> {
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => default_state_dir().ok_or_else(|| {
            CommandError::Usage(anyhow::anyhow!(
                "no home directory to keep the agent's state in: pass --state-dir"
            ))
        })?,
    };
    let work_dir = args.work_dir.unwrap_or_else(|| state_dir.join("work"));
    let mut config = AgentConfig::new(args.server, state_dir, work_dir);
    config.registration_token = args.token.filter(|t| !t.trim().is_empty());
    config.labels = if args.labels.is_empty() {
        vec![
            gantry_runner::context::runner_os().to_ascii_lowercase(),
            gantry_runner::context::runner_arch().to_ascii_lowercase(),
        ]
    } else {
        args.labels
            .iter()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    config.concurrency = usize::try_from(args.concurrency).unwrap_or(1);
    config.min_free_space = args.min_free_mib.saturating_mul(1024 * 1024);
    config.name = args
        .name
        .or_else(hostname)
        .unwrap_or_else(|| "gantry-agent".to_owned());
    if !(args.cancel_grace.is_finite() && args.cancel_grace >= 0.0) {
        return Err(CommandError::Usage(anyhow::anyhow!(
            "--cancel-grace must be a number of seconds"
        )));
    }
    config.cancel_grace = Duration::from_secs_f64(args.cancel_grace);
    Ok(config)
}

/// SIGTERM and Ctrl-C drain, then force; SIGQUIT forces.
fn watch_signals(shutdown: Shutdown) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    Ok(tokio::spawn(async move {
        loop {
            let forced = tokio::select! {
                _ = terminate.recv() => shutdown.is_draining(),
                _ = interrupt.recv() => shutdown.is_draining(),
                _ = quit.recv() => true,
            };
            if forced {
                tracing::warn!("stopping: cancelling running jobs");
                shutdown.cancel();
            } else {
                tracing::info!(
                    "draining: running jobs finish, no new ones are taken (SIGTERM again or \
                     SIGQUIT cancels them)"
                );
                shutdown.drain();
            }
        }
    }))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("gantry").join("agent"))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
