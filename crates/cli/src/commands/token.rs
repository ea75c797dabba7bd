//! `gantry token` (API tokens for people and scripts) and `gantry agent-token` (registration
//! tokens for agents). Both need an admin token. A new token is printed once, alone on standard
//! output, so it can be captured: `TOKEN=$(gantry token create ...)`.

use crate::client::{
    Client, ServerArgs, block_on, format_age, now_ms, print_json, print_table, table,
};
use crate::exit::CommandError;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// Create, list and delete API tokens.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry token create --role read --name dashboard
  GANTRY_TOKEN=$(gantry token create --role write --name ci-bot)
  gantry token list
  gantry token delete tok_9d3e...

Roles: read (see runs, jobs, logs, agents, queue), write (also cancel, re-run, dispatch,
repository secrets), admin (also repositories, global secrets, agents, tokens).")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; it is printed once.
    Create {
        /// What it may do.
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
        /// Who or what uses it.
        #[arg(long)]
        name: String,
        /// Print the server's JSON answer (with the token).
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a token; it stops working at once.
    Delete {
        /// The token's id (tok_...).
        id: String,
    },
}

/// Create, list and revoke the registration tokens agents start with.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry agent-token create --description \"build hosts\"
  gantry agent --server https://ci.example.com --token $(gantry agent-token create)
  gantry agent-token list
  gantry agent-token revoke reg_77a0...

An agent exchanges the token for its own credential when it first starts; revoking the token
later does not stop agents registered with it (`gantry agents revoke` does).")]
pub struct AgentTokenArgs {
    #[command(subcommand)]
    pub action: AgentTokenAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentTokenAction {
    /// Create a registration token; it is printed once.
    Create {
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24, value_name = "HOURS",
              value_parser = clap::value_parser!(u64).range(1..=8760))]
        expires_in: u64,
        /// Print the server's JSON answer (with the token).
        #[arg(long)]
        json: bool,
    },
    /// List registration tokens (never the tokens themselves).
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a registration token.
    Revoke {
        /// The token's id (reg_...).
        id: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct ApiToken {
    id: String,
    name: String,
    role: String,
    created_ms: i64,
    last_used_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ApiTokenList {
    tokens: Vec<ApiToken>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistrationToken {
    id: String,
    description: String,
    created_ms: i64,
    expires_ms: Option<i64>,
    revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistrationTokenList {
    tokens: Vec<RegistrationToken>,
}

pub fn cmd_token(args: TokenArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    block_on(async {
        match args.action {
            TokenAction::Create { role, name, json } => {
                let created: ApiToken = client
                    .post(
                        "/api/v1/tokens",
                        &serde_json::json!({ "name": name, "role": role }),
                    )
                    .await?;
                if json {
                    return print_json(&created);
                }
                eprintln!(
                    "Created the {} token {} ({}). It is shown only this once:",
                    created.role, created.name, created.id
                );
                println!("{}", created.token.unwrap_or_default());
            }
            TokenAction::List { json } => {
                let list: ApiTokenList = client.get("/api/v1/tokens").await?;
                if json {
                    return print_json(&list);
                }
                let now = now_ms();
                let mut rows = table(&["id", "name", "role", "created", "last used"]);
                for token in &list.tokens {
                    rows.add_row(vec![
                        token.id.clone(),
                        token.name.clone(),
                        token.role.clone(),
                        format_age(token.created_ms, now),
                        token
                            .last_used_ms
                            .map(|t| format_age(t, now))
                            .unwrap_or_else(|| "never".to_owned()),
                    ]);
                }
                print_table(&rows);
            }
            TokenAction::Delete { id } => {
                client
                    .empty(client.request(Method::DELETE, &format!("/api/v1/tokens/{}", id.trim())))
                    .await?;
                println!("Deleted {}.", id.trim());
            }
        }
        Ok(())
    })
}

pub fn cmd_agent_token(args: AgentTokenArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    block_on(async {
        match args.action {
            AgentTokenAction::Create {
                description,
                expires_in,
                json,
            } => {
                let mut body = serde_json::json!({ "expires_in_hours": expires_in });
                if let Some(description) = description {
                    body["description"] = serde_json::Value::String(description);
                }
                let created: RegistrationToken = client.post("/api/v1/agent-tokens", &body).await?;
                if json {
                    return print_json(&created);
                }
                eprintln!(
                    "Created the registration token {} (expires in {expires_in} h). It is shown \
                     only this once:",
                    created.id
                );
                println!("{}", created.token.unwrap_or_default());
            }
            AgentTokenAction::List { json } => {
                let list: RegistrationTokenList = client.get("/api/v1/agent-tokens").await?;
                if json {
                    return print_json(&list);
                }
                let now = now_ms();
                let mut rows = table(&["id", "description", "created", "state"]);
                for token in &list.tokens {
                    let state = if token.revoked {
                        "revoked".to_owned()
                    } else {
                        match token.expires_ms {
                            Some(at) if at <= now => "expired".to_owned(),
                            Some(at) => {
                                format!("valid for {}", crate::client::format_duration(at - now))
                            }
                            None => "valid".to_owned(),
                        }
                    };
                    rows.add_row(vec![
                        token.id.clone(),
                        token.description.clone(),
                        format_age(token.created_ms, now),
                        state,
                    ]);
                }
                print_table(&rows);
            }
            AgentTokenAction::Revoke { id } => {
                client
                    .empty(client.request(
                        Method::POST,
                        &format!("/api/v1/agent-tokens/{}/revoke", id.trim()),
                    ))
                    .await?;
                println!("Revoked {}.", id.trim());
            }
        }
        Ok(())
    })
}
