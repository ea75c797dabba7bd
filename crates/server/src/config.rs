//! Server configuration: where it listens and keeps its data, the database, lease and limit
//! settings, and the label map from `runs-on` labels to the labels agents declare.

use indexmap::IndexMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `gantry server` can be told. `ServerConfig::new(data_dir)` gives the defaults.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Listen address (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Where the database, mirrors and key live (default `./gantry-data`).
    pub data_dir: PathBuf,
    /// `sqlite://...` (default: `gantry.db` in the data dir) or `postgres://...`.
    pub database_url: String,
    /// The address users and forges reach this server at (for links in commit statuses).
    pub public_url: String,
    /// Which agent labels a `runs-on` label requires. A label not in the map requires itself;
    /// a label mapped to `[]` requires nothing (`self-hosted`).
    pub label_map: IndexMap<String, Vec<String>>,
    /// How long an assignment stays valid without a heartbeat.
    pub lease: Duration,
    /// How often agents should heartbeat.
    pub heartbeat: Duration,
    /// How many times a job whose agent was lost is tried again on another agent.
    pub lost_job_retries: u32,
    /// Bytes of log kept per job; beyond it a truncation marker is stored once.
    pub log_limit: u64,
    /// Largest webhook body accepted.
    pub webhook_body_limit: usize,
    /// How long an agent's poll is held open when there is no work.
    pub poll_hold: Duration,
    /// Registration token agents exchange for a credential (`None`: only tokens created with
    /// `gantry agent-token create`).
    pub registration_token: Option<String>,
    /// Whether reading the API and web UI needs no token.
    pub anonymous_read: bool,
    /// Agents started inside the server process.
    pub embedded_agents: usize,
    /// Job timeout when a job sets none (GitHub: 360 minutes).
    pub default_job_timeout: Duration,
    /// How long a queued job may wait for an agent before it fails.
    pub queue_timeout: Duration,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        let data_dir = data_dir.into();
        let database_url = format!("sqlite://{}", data_dir.join("gantry.db").display());
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            database_url,
            public_url: "http://127.0.0.1:8080".to_owned(),
            label_map: default_label_map(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            lost_job_retries: 1,
            log_limit: 64 * 1024 * 1024,
            webhook_body_limit: 25 * 1024 * 1024,
            poll_hold: Duration::from_secs(30),
            registration_token: None,
            anonymous_read: true,
            embedded_agents: 2,
            default_job_timeout: Duration::from_secs(360 * 60),
            queue_timeout: Duration::from_secs(24 * 60 * 60),
        }
    }

    /// The agent labels a job with these `runs-on` labels needs.
    pub fn required_labels(&self, runs_on: &[String]) -> Vec<String> {
        let mut required: Vec<String> = Vec::new();
        for label in runs_on {
            let mapped = self
                .label_map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(label))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| vec![label.to_ascii_lowercase()]);
            for l in mapped {
                if !required.contains(&l) {
                    required.push(l);
                }
            }
        }
        required
    }
}

/// GitHub's hosted labels mapped to what a Linux agent declares.
pub fn default_label_map() -> IndexMap<String, Vec<String>> {
    let mut map = IndexMap::new();
    for label in [
        "ubuntu-latest",
        "ubuntu-24.04",
        "ubuntu-22.04",
        "ubuntu-20.04",
        "ubuntu-18.04",
    ] {
        map.insert(label.to_owned(), vec!["linux".to_owned()]);
    }
    map.insert("self-hosted".to_owned(), Vec::new());
    map.insert("linux".to_owned(), vec!["linux".to_owned()]);
    map.insert("x64".to_owned(), vec!["x64".to_owned()]);
    map
}

/// Parses `label=a,b` (a label map entry given on the command line).
pub fn parse_label_mapping(text: &str) -> Result<(String, Vec<String>), String> {
    let (label, targets) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not LABEL=agent-label,agent-label"))?;
    let label = label.trim();
    if label.is_empty() {
        return Err(format!("`{text}`: the label before `=` is empty"));
    }
    let targets = targets
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    Ok((label.to_owned(), targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_labels_need_a_linux_agent_and_self_hosted_needs_nothing() {
        let config = ServerConfig::new("/tmp/x");
        assert_eq!(
            config.required_labels(&["ubuntu-latest".into()]),
            vec!["linux"]
        );
        assert_eq!(
            config.required_labels(&["self-hosted".into(), "linux".into(), "GPU".into()]),
            vec!["linux", "gpu"]
        );
        assert!(config.required_labels(&["self-hosted".into()]).is_empty());
    }

    #[test]
    fn label_mappings_parse() {
        assert_eq!(
            parse_label_mapping("ubuntu-latest=linux,x64"),
            Ok(("ubuntu-latest".into(), vec!["linux".into(), "x64".into()]))
        );
        assert!(parse_label_mapping("nolabel").is_err());
        assert_eq!(
            parse_label_mapping("self-hosted="),
            Ok(("self-hosted".into(), vec![]))
        );
    }
}
