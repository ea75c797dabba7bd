//! `gantry server`: the coordinator (webhooks, store, scheduler, API, web UI), and optionally
//! agents inside the same process so one machine is a whole CI.

use crate::exit::CommandError;
use anyhow::Context as _;
use clap::Args;
use gantry_server::app::{AppState, spawn_background};
use gantry_server::config::{ServerConfig, parse_label_mapping};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Run the Gantry server: webhooks, queue, agents' API, REST API and web UI.
///
/// On its defaults it keeps everything under ./gantry-data (SQLite database, git mirrors, the
/// key that protects stored secrets), listens on 127.0.0.1:8080, and starts two agents in the
/// same process, so a single machine is a complete CI. More agents join from other machines
/// with `gantry agent --server URL --token T`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry server                                   # ./gantry-data, 127.0.0.1:8080, 2 agents
  gantry server --listen 0.0.0.0:8080 --public-url https://ci.example.com --agents 0
  gantry server --database-url postgres://gantry:pw@db/gantry --registration-token $TOKEN
  gantry server --label-map ubuntu-latest=linux,x64 --label-map gpu=linux,cuda

Then: gantry repo add <clone-url> --webhook-secret S, and point the forge's webhook at
<public-url>/hooks/github (GitHub, Gitea, Forgejo) or /hooks/gitlab.")]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "GANTRY_LISTEN")]
    pub listen: SocketAddr,
    /// Where the database, mirrors and key live.
    #[arg(long, default_value = "gantry-data", env = "GANTRY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Database: sqlite://PATH (default: <data-dir>/gantry.db) or postgres://...
    #[arg(long, env = "GANTRY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The address users and forges reach this server at (links in commit statuses).
    #[arg(long, env = "GANTRY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Agents started inside the server process.
    #[arg(long, default_value_t = 2)]
    pub agents: usize,
    /// Labels the embedded agents offer (default: linux and this machine's architecture).
    #[arg(long, value_delimiter = ',')]
    pub agent_labels: Vec<String>,
    /// Jobs each embedded agent runs at once.
    #[arg(long, default_value_t = 1)]
    pub agent_concurrency: usize,
    /// Registration token agents exchange for a credential (default: a random one, used by the
    /// embedded agents; create tokens for other agents with `gantry agent-token create`).
    #[arg(long, env = "GANTRY_REGISTRATION_TOKEN", hide_env_values = true)]
    pub registration_token: Option<String>,
    /// Map a `runs-on` label to the agent labels it needs (LABEL=a,b). Repeatable.
    #[arg(long = "label-map", value_name = "LABEL=A,B", value_parser = parse_label_mapping)]
    pub label_map: Vec<(String, Vec<String>)>,
    /// Seconds an assignment stays valid without a heartbeat.
    #[arg(long, default_value_t = 30.0)]
    pub lease_seconds: f64,
    /// Seconds between agent heartbeats.
    #[arg(long, default_value_t = 10.0)]
    pub heartbeat_seconds: f64,
    /// How many times a job whose agent was lost is tried again on another agent.
    #[arg(long, default_value_t = 1)]
    pub lost_job_retries: u32,
    /// Seconds a job may wait in the queue for an agent before it fails, naming the labels no
    /// agent offered (default: 24 hours, as GitHub).
    #[arg(long, default_value_t = 86_400.0)]
    pub queue_timeout_seconds: f64,
    /// Seconds an agent's poll is held open when there is no work.
    #[arg(long, default_value_t = 30.0)]
    pub poll_hold_seconds: f64,
    /// MiB of log kept per job; past it the log ends with a truncation marker and further
    /// output is dropped (the job goes on).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_log_mib: u64,
    /// Require a token to read the API and the web UI.
    #[arg(long)]
    pub private: bool,
}

pub fn cmd_server(args: ServerArgs) -> Result<(), CommandError> {
    init_logging();
    let config = build_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(CommandError::Internal)?;
    runtime.block_on(serve(config, args))
}

fn build_config(args: &ServerArgs) -> Result<ServerConfig, CommandError> {
    let seconds = |value: f64, flag: &str| -> Result<Duration, CommandError> {
        if value.is_finite() && value > 0.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(CommandError::Usage(anyhow::anyhow!(
                "{flag} must be a positive number of seconds"
            )))
        }
    };
    let mut config = ServerConfig::new(&args.data_dir);
    config.listen = args.listen;
    if let Some(url) = &args.database_url {
        config.database_url = url.clone();
    }
    config.public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    config.lease = seconds(args.lease_seconds, "--lease-seconds")?;
    config.heartbeat = seconds(args.heartbeat_seconds, "--heartbeat-seconds")?;
    if config.heartbeat >= config.lease {
        return Err(CommandError::Usage(anyhow::anyhow!(
            "--heartbeat-seconds must be shorter than --lease-seconds"
        )));
    }
    config.poll_hold = seconds(args.poll_hold_seconds, "--poll-hold-seconds")?;
    config.lost_job_retries = args.lost_job_retries;
    config.queue_timeout = seconds(args.queue_timeout_seconds, "--queue-timeout-seconds")?;
    if args.max_log_mib == 0 {
        return Err(CommandError::Usage(anyhow::anyhow!(
            "--max-log-mib must be at least 1"
        )));
    }
    config.log_limit = args.max_log_mib.saturating_mul(1024 * 1024);
    config.anonymous_read = !args.private;
    config.embedded_agents = args.agents;
    for (label, targets) in &args.label_map {
        config.label_map.insert(label.clone(), targets.clone());
    }
    if args
        .registration_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(CommandError::Usage(anyhow::anyhow!(
            "--registration-token (or GANTRY_REGISTRATION_TOKEN) is empty: give a secret \
             value, or leave it out to get a random one"
        )));
    }
    config.registration_token = args
        .registration_token
        .clone()
        .or_else(|| (args.agents > 0).then(|| gantry_server::store::generate_token("gantry_reg_")));
    Ok(config)
}

async fn serve(config: ServerConfig, args: ServerArgs) -> Result<(), CommandError> {
    let data_dir = config.data_dir.clone();
    let registration_token = config.registration_token.clone();
    let embedded = config.embedded_agents;
    let (state, key_origin) = AppState::open(config).await.map_err(CommandError::Usage)?;
    let listener = tokio::net::TcpListener::bind(state.config.listen)
        .await
        .with_context(|| format!("could not listen on {}", state.config.listen))
        .map_err(CommandError::Usage)?;
    let address = listener
        .local_addr()
        .context("could not read the listening address")
        .map_err(CommandError::Internal)?;
    let background = spawn_background(&state);

    let first_start = state
        .db
        .list_repositories()
        .await
        .map(|repos| repos.is_empty())
        .unwrap_or(false);
    let admin_token = gantry_server::api::ensure_initial_admin_token(&state.db)
        .await
        .map_err(|e| {
            CommandError::Internal(anyhow::anyhow!(
                "could not create the first admin token: {e}"
            ))
        })?;
    print_banner(
        &state.config,
        address,
        first_start,
        admin_token.as_deref(),
        &key_origin,
    );

    // Agents inside this process, pulling over HTTP like any other agent.
    let agent_shutdown = gantry_agent::Shutdown::new();
    let mut agents = Vec::new();
    if let Some(token) = &registration_token {
        for index in 0..embedded {
            let state_dir = data_dir.join("agents").join(format!("embedded-{index}"));
            let mut agent = gantry_agent::AgentConfig::new(
                format!("http://{address}"),
                state_dir.clone(),
                state_dir.join("work"),
            );
            agent.registration_token = Some(token.clone());
            agent.name = format!("embedded-{index}");
            agent.labels = if args.agent_labels.is_empty() {
                vec![
                    gantry_runner::context::runner_os().to_ascii_lowercase(),
                    gantry_runner::context::runner_arch().to_ascii_lowercase(),
                ]
            } else {
                args.agent_labels.clone()
            };
            agent.concurrency = args.agent_concurrency.max(1);
            let shutdown = agent_shutdown.clone();
            agents.push(tokio::spawn(async move {
                if let Err(e) = gantry_agent::Agent::run(agent, shutdown).await {
                    tracing::error!(error = %e, "embedded agent stopped");
                }
            }));
        }
    }

    let shutdown = state.shutdown.clone();
    let mut terminate = signal(SignalKind::terminate())
        .context("could not listen for SIGTERM")
        .map_err(CommandError::Internal)?;
    let mut interrupt = signal(SignalKind::interrupt())
        .context("could not listen for SIGINT")
        .map_err(CommandError::Internal)?;
    let signal_shutdown = shutdown.clone();
    let agent_stop = agent_shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping: embedded agents finish their jobs first");
        agent_stop.drain();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
            _ = agent_stop.drained() => {}
        }
        agent_stop.cancel();
        signal_shutdown.cancel();
    });

    drop(shutdown);
    gantry_server::app::serve_http(listener, state.clone())
        .await
        .context("the HTTP server failed")
        .map_err(CommandError::Internal)?;
    for task in agents {
        let _ = task.await;
    }
    for task in background {
        task.abort();
    }
    state.db.close().await;
    Ok(())
}

fn print_banner(
    config: &ServerConfig,
    address: SocketAddr,
    first_start: bool,
    admin_token: Option<&str>,
    key_origin: &gantry_server::secret::KeyOrigin,
) {
    use std::io::Write;
    let mut out = anstream::stdout();
    let _ = writeln!(out, "Gantry server listening on http://{address}");
    let _ = writeln!(out, "  data:     {}", config.data_dir.display());
    let _ = writeln!(
        out,
        "  database: {}",
        gantry_server::app::redact(&config.database_url)
    );
    let _ = writeln!(out, "  secrets key: {}", describe_key(key_origin));
    let _ = writeln!(out, "  embedded agents: {}", config.embedded_agents);
    if let Some(token) = admin_token {
        let _ = writeln!(
            out,
            "\nAn admin API token was created (shown once; keep it):\n  export GANTRY_TOKEN={token}"
        );
    }
    if first_start {
        let public = config.public_url.trim_end_matches('/');
        let _ = writeln!(
            out,
            "\nNext steps:\n  1. Register a repository:  gantry repo add <clone-url> --webhook-secret <secret>\n  \
             2. Point its webhook at:     {public}/hooks/github   (GitHub, Gitea, Forgejo)\n                               \
             {public}/hooks/gitlab   (GitLab)\n     with content type application/json and the same secret.\n  \
             3. Watch runs:               {public}/   or   gantry runs\n  \
             4. More agents:              gantry agent-token create, then on each machine\n                               \
             gantry agent --server {public} --token <token>"
        );
    }
    let _ = out.flush();
}

fn describe_key(origin: &gantry_server::secret::KeyOrigin) -> String {
    use gantry_server::secret::KeyOrigin;
    match origin {
        KeyOrigin::Env => "from GANTRY_SECRET_KEY".to_owned(),
        KeyOrigin::File(path) => format!("{}", path.display()),
        KeyOrigin::Created(path) => {
            format!("{} (created now, mode 0600: back it up)", path.display())
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
