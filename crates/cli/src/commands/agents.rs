//! `gantry agents`: the agents registered with a server, what they run and when they were last
//! heard from; `gantry agents revoke` takes one's credential away (admin).

use crate::client::{
    Client, ServerArgs, block_on, format_age, now_ms, print_json, render_table, table,
};
use crate::exit::CommandError;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

/// List the server's agents, or revoke one.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry agents
  gantry agents --json
  gantry agents revoke agt_51c0...   # its credential stops working; its jobs run elsewhere")]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub action: Option<AgentsAction>,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentsAction {
    /// Revoke an agent: its credential stops working at once, and the jobs it was running
    /// fail as `agent lost` (and are tried once more on another agent).
    Revoke {
        /// The agent's id (agt_...).
        agent: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    pub status: String,
    pub revoked: bool,
    pub last_seen_ms: i64,
    pub running: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<Agent>,
}

#[derive(Debug, Deserialize)]
struct RevokeAnswer {
    lost_jobs: Vec<String>,
    retried_jobs: Vec<String>,
}

pub fn cmd_agents(args: AgentsArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    match args.action {
        Some(AgentsAction::Revoke { agent }) => block_on(async {
            let answer: RevokeAnswer = client
                .post(
                    &format!("/api/v1/agents/{}/revoke", agent.trim()),
                    &serde_json::json!({}),
                )
                .await?;
            println!("Revoked {agent}.");
            if !answer.lost_jobs.is_empty() {
                println!(
                    "Jobs it was running: {} (tried again: {}).",
                    answer.lost_jobs.join(", "),
                    answer.retried_jobs.len()
                );
            }
            Ok(())
        }),
        None => block_on(async {
            let list: AgentList = client.get("/api/v1/agents").await?;
            if args.json {
                return print_json(&list);
            }
            print!("{}", render(&list, now_ms()));
            Ok(())
        }),
    }
}

/// The agent list as a table.
pub fn render(list: &AgentList, now: i64) -> String {
    if list.agents.is_empty() {
        return "No agents. Start one with `gantry agent --server URL --token T` \
                (an admin creates T with `gantry agent-token create`).\n"
            .to_owned();
    }
    let mut rows = table(&[
        "agent",
        "name",
        "status",
        "labels",
        "running",
        "last seen",
        "version",
    ]);
    for agent in &list.agents {
        let status = if agent.revoked {
            "revoked".to_owned()
        } else {
            agent.status.clone()
        };
        rows.add_row(vec![
            agent.id.clone(),
            agent.name.clone(),
            status,
            agent.labels.join(","),
            agent.running.join(" "),
            format_age(agent.last_seen_ms, now),
            agent.version.clone(),
        ]);
    }
    render_table(&rows)
}
