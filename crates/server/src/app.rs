//! The server's shared state, its HTTP router, and `serve`, which opens the store, starts the
//! background tasks (ingester, scheduler, status sender, cron) and answers HTTP until shutdown.

use crate::config::ServerConfig;
use crate::mirror::Mirrors;
use crate::secret::{KeyOrigin, KeyRing, SecretKey};
use crate::store::{Db, SealedAt, SealedValue, StoreConfig};
use anyhow::Context as _;
use axum::Router;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What every handler and background task shares.
pub struct AppState {
    pub config: ServerConfig,
    pub db: Db,
    pub mirrors: Mirrors,
    pub keys: KeyRing,
    pub wake: Wake,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
    /// When this process opened the store (milliseconds since the epoch): leases that ran out
    /// while the server was down are not held against agents before one lease has passed.
    pub started_ms: i64,
    /// Run graphs between two scheduler steps.
    pub graphs: crate::run_state::GraphCache,
}

/// Wake-ups between handlers and background tasks, so work starts at once instead of at the
/// next tick. Each task still polls the store on a timer: a lost wake-up delays, never loses.
#[derive(Default)]
pub struct Wake {
    /// A delivery was stored.
    pub deliveries: Notify,
    /// A job finished, a cancel was requested, a run was created.
    pub scheduler: Notify,
    /// Jobs were queued: agents waiting in a poll look again.
    pub jobs: Notify,
    /// A cancel was requested: held heartbeats look again.
    pub cancels: Notify,
    /// Commit statuses to send.
    pub statuses: Notify,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl AppState {
    /// Opens the data directory, the key and the store.
    pub async fn open(config: ServerConfig) -> anyhow::Result<(Arc<AppState>, KeyOrigin)> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("could not create {}", config.data_dir.display()))?;
        let key_file = config.data_dir.join(crate::secret::KEY_FILE_NAME);
        let (key, origin) = SecretKey::load_from_env_or_file(&key_file)
            .with_context(|| "could not load the secret key that protects stored secrets")?;
        let store_config = StoreConfig {
            log_cap_bytes: config.log_limit,
            ..StoreConfig::default()
        };
        let db = Db::connect_with(&config.database_url, store_config)
            .await
            .with_context(|| {
                format!(
                    "could not open the database {}",
                    redact(&config.database_url)
                )
            })?;
        let sealed = db.list_sealed_values().await?;
        if let KeyOrigin::Created(path) = &origin
            && !sealed.is_empty()
        {
            anyhow::bail!(
                "the database holds sealed secrets but the key that sealed them is missing: a new \
                 key was just created at {}. Restore the original key file there (or set \
                 GANTRY_SECRET_KEY), then start again; delete {} first",
                path.display(),
                path.display()
            );
        }
        let previous = SecretKey::load_previous_from_env_or_file(
            &config.data_dir.join(crate::secret::PREVIOUS_KEYS_FILE_NAME),
        )
        .with_context(|| "could not load the previous secret keys")?;
        let mut keys = KeyRing::new(key);
        for old in previous {
            keys = keys
                .with_old_key(old)
                .with_context(|| "could not use the previous secret keys")?;
        }
        reseal_stored_values(&db, &keys, sealed).await?;
        let mirrors = Mirrors::new(config.data_dir.join("mirrors"));
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .context("could not build the HTTP client")?;
        Ok((
            Arc::new(AppState {
                config,
                db,
                mirrors,
                keys,
                wake: Wake::default(),
                shutdown: CancellationToken::new(),
                http,
                started_ms: now_ms(),
                graphs: Default::default(),
            }),
            origin,
        ))
    }
}

/// Opens every sealed value of the store with the key ring and seals again, with the current
/// key, those an older key sealed (one transaction). Refuses to go on when the current key
/// opens none of them (the wrong key), or when some were sealed with a key version that is not
/// configured (the previous key is missing); a value that opens with none of the keys while
/// others do is reported and left as it is.
async fn reseal_stored_values(
    db: &Db,
    keys: &KeyRing,
    values: Vec<SealedValue>,
) -> anyhow::Result<usize> {
    use crate::secret::{SecretError, sealed_aad};
    let mut changes = Vec::new();
    let mut opened = 0usize;
    let mut unknown: std::collections::BTreeMap<u8, usize> = Default::default();
    let mut broken = Vec::new();
    for value in values {
        let aad = sealed_aad(&value.at);
        match keys.reseal(&aad, &value.sealed) {
            Ok(resealed) => {
                opened += 1;
                if let Some(new) = resealed {
                    changes.push((value, new));
                }
            }
            Err(SecretError::UnknownKeyVersion(version)) => {
                *unknown.entry(version).or_default() += 1;
            }
            Err(error) => broken.push(format!("{}: {error}", sealed_label(&value.at))),
        }
    }
    if let Some((version, count)) = unknown.iter().next() {
        anyhow::bail!(
            "{count} stored secret value(s) were sealed with key version {version}, which is not \
             configured: add that key (as v{version}:KEY) to {} or to the file {} in the data \
             directory, then start again",
            crate::secret::PREVIOUS_KEYS_ENV,
            crate::secret::PREVIOUS_KEYS_FILE_NAME
        );
    }
    if opened == 0 && !broken.is_empty() {
        anyhow::bail!(
            "the secret key opens none of the {} stored secret values: it is not the key that \
             sealed them. Set GANTRY_SECRET_KEY (or restore the key file) to that key; when \
             rotating, the new key needs its own version (v2:KEY) and the old one goes to {}",
            broken.len(),
            crate::secret::PREVIOUS_KEYS_ENV
        );
    }
    for problem in &broken {
        tracing::error!("a stored secret value does not open and is left as it is: {problem}");
    }
    let resealed = if changes.is_empty() {
        0
    } else {
        db.replace_sealed_values(&changes).await?
    };
    if resealed > 0 {
        tracing::info!(
            resealed,
            key_version = keys.current().version(),
            "stored secret values sealed again with the current key; the previous keys are \
             no longer needed"
        );
    }
    Ok(resealed)
}

/// Names a sealed value in messages.
fn sealed_label(at: &SealedAt) -> String {
    match at {
        SealedAt::Secret {
            repository_id: Some(repo),
            name,
            ..
        } => format!("secret {name} of repository {repo}"),
        SealedAt::Secret { name, .. } => format!("global secret {name}"),
        SealedAt::WebhookSecret(repo) => format!("webhook secret of repository {repo}"),
        SealedAt::StatusToken(repo) => format!("status token of repository {repo}"),
    }
}

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.webhook_body_limit;
    Router::new()
        .merge(crate::webhook::routes(limit))
        .merge(crate::agent_api::routes())
        .merge(crate::api::routes())
        .merge(crate::web::routes())
        .with_state(state)
}

/// Answers HTTP on `listener` until `state.shutdown` is cancelled.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Starts the background tasks; they stop when `state.shutdown` is cancelled.
pub fn spawn_background(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(crate::ingest::run_ingester(state.clone())),
        tokio::spawn(crate::scheduler::run_scheduler(state.clone())),
        tokio::spawn(crate::status::run_status_sender(state.clone())),
        tokio::spawn(crate::cron::run_cron(state.clone())),
    ]
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::redact("postgres://gantry:s3cret@db:5432/gantry"),
            "postgres://gantry:***@db:5432/gantry"
        );
        assert_eq!(
            super::redact("sqlite:///x/gantry.db"),
            "sqlite:///x/gantry.db"
        );
    }
}
