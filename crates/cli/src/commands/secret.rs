//! `gantry secret`: set, list and delete the secrets jobs receive, global or per repository.
//! Values go to the server once, sealed there, and never come back. Repository secrets need a
//! write token, global ones an admin token.

use crate::client::{Client, ServerArgs, block_on, print_json, print_table, table};
use crate::exit::CommandError;
use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal as _, Read as _};

/// Set, list and delete secrets.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry secret set DEPLOY_KEY --repo acme/site < deploy_key.pem
  printf %s \"$TOKEN\" | gantry secret set NPM_TOKEN --repo acme/site
  gantry secret set SLACK_WEBHOOK --value https://hooks.slack.com/...   # global (admin)
  gantry secret list --repo acme/site
  gantry secret delete NPM_TOKEN --repo acme/site

Names are letters, digits and _, compared without case (stored in upper case). A repository
secret hides a global one of the same name. Runs of pull requests from forks get no secrets.")]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Set a secret; the value comes from standard input unless --value is given.
    Set {
        name: String,
        /// The repository (`owner/repo` or its id); without it the secret is global.
        #[arg(long, value_name = "REPO")]
        repo: Option<String>,
        /// The value (visible in the process list and shell history: prefer standard input).
        #[arg(long)]
        value: Option<String>,
    },
    /// List secret names and dates (never values).
    List {
        /// The repository; without it, the global secrets.
        #[arg(long, value_name = "REPO")]
        repo: Option<String>,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret.
    Delete {
        name: String,
        /// The repository; without it, a global secret.
        #[arg(long, value_name = "REPO")]
        repo: Option<String>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Secret {
    name: String,
    repository: Option<String>,
    created_ms: i64,
    updated_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SecretList {
    secrets: Vec<Secret>,
}

/// The value read from standard input: one trailing newline is dropped (what `echo` adds).
pub fn value_from_input(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

fn read_value() -> Result<String, CommandError> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type the value, then press Enter and Ctrl-D:");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("could not read the value from standard input (it must be UTF-8 text)")
        .map_err(CommandError::Usage)?;
    let value = value_from_input(text);
    if value.is_empty() {
        return Err(CommandError::Usage(anyhow!(
            "the value is empty: pipe it in (gantry secret set NAME < file) or pass --value"
        )));
    }
    Ok(value)
}

pub fn cmd_secret(args: SecretArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    match args.action {
        SecretAction::Set { name, repo, value } => {
            let value = match value {
                Some(value) => value,
                None => read_value()?,
            };
            block_on(async {
                let secret: Secret = client
                    .json(
                        client
                            .request(Method::PUT, &format!("/api/v1/secrets/{}", name.trim()))
                            .query(&scope(&repo))
                            .json(&serde_json::json!({ "value": value })),
                    )
                    .await?;
                println!(
                    "Set {} for {}.",
                    secret.name,
                    secret.repository.as_deref().unwrap_or("every repository")
                );
                Ok(())
            })
        }
        SecretAction::List { repo, json } => block_on(async {
            let list: SecretList = client
                .json(
                    client
                        .request(Method::GET, "/api/v1/secrets")
                        .query(&scope(&repo)),
                )
                .await?;
            if json {
                return print_json(&list);
            }
            if list.secrets.is_empty() {
                println!("No secrets.");
                return Ok(());
            }
            let mut rows = table(&["name", "scope", "updated"]);
            for secret in &list.secrets {
                rows.add_row(vec![
                    secret.name.clone(),
                    secret
                        .repository
                        .clone()
                        .unwrap_or_else(|| "global".to_owned()),
                    crate::client::format_age(secret.updated_ms, crate::client::now_ms()),
                ]);
            }
            print_table(&rows);
            Ok(())
        }),
        SecretAction::Delete { name, repo } => block_on(async {
            client
                .empty(
                    client
                        .request(Method::DELETE, &format!("/api/v1/secrets/{}", name.trim()))
                        .query(&scope(&repo)),
                )
                .await?;
            println!("Deleted {}.", name.trim().to_ascii_uppercase());
            Ok(())
        }),
    }
}

fn scope(repo: &Option<String>) -> Vec<(&'static str, String)> {
    repo.iter()
        .map(|r| ("repository", r.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::value_from_input;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(value_from_input("abc\n".into()), "abc");
        assert_eq!(value_from_input("abc\r\n".into()), "abc");
        assert_eq!(value_from_input("a\nb\n\n".into()), "a\nb\n");
        assert_eq!(value_from_input("abc".into()), "abc");
    }
}
