//! `gantry repo`: register the repositories a Gantry server builds (`add`), list them, and
//! remove one. Needs an admin token.

use crate::client::{Client, ServerArgs, block_on, print_json, print_table, table};
use crate::exit::CommandError;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// Register and list the repositories the server builds.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry repo add https://github.com/acme/widgets.git --webhook-secret \"$SECRET\"
  gantry repo add https://gitea.example.com/acme/app.git --forge gitea --webhook-secret S \\
      --status-url https://gitea.example.com/api/v1 --status-token \"$GITEA_TOKEN\"
  gantry repo add /srv/git/acme/tools.git --name acme/tools --allow-unsigned
  gantry repo list
  gantry repo remove acme/tools")]
pub struct RepoArgs {
    #[command(subcommand)]
    pub action: RepoAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum RepoAction {
    /// Register a repository; prints the webhook address to give the forge.
    Add(AddArgs),
    /// List the registered repositories.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a repository with its runs, logs and secrets.
    Remove {
        /// `owner/repo` or its id.
        repository: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Where the server clones it from (https, ssh, or a local path).
    pub clone_url: String,
    /// `owner/repo` as the forge names it (default: from the clone URL).
    #[arg(long)]
    pub name: Option<String>,
    /// The forge that sends its webhooks.
    #[arg(long, default_value = "github", value_parser = ["github", "gitea", "forgejo", "gitlab"])]
    pub forge: String,
    /// The secret the forge signs webhooks with. Without it, deliveries are refused unless
    /// --allow-unsigned is given.
    #[arg(
        long,
        env = "GANTRY_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub webhook_secret: Option<String>,
    /// Accept webhooks without a signature (only on a trusted network).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// The forge's API base for commit statuses (https://api.github.com for GitHub).
    #[arg(long, requires = "status_token", value_name = "URL")]
    pub status_url: Option<String>,
    /// A token allowed to set commit statuses on the repository.
    #[arg(
        long,
        requires = "status_url",
        env = "GANTRY_STATUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub status_token: Option<String>,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// A repository as the server shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Repository {
    pub id: String,
    pub name: String,
    pub clone_url: String,
    pub forge: String,
    pub has_webhook_secret: bool,
    pub allow_unsigned: bool,
    #[serde(default)]
    pub status_url: Option<String>,
    pub has_status_token: bool,
    pub webhook_url: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RepositoryList {
    repositories: Vec<Repository>,
}

#[derive(Serialize)]
struct NewRepository<'a> {
    clone_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    forge: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<&'a str>,
    allow_unsigned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_token: Option<&'a str>,
}

pub fn cmd_repo(args: RepoArgs) -> Result<(), CommandError> {
    let client = Client::new(&args.server)?;
    match args.action {
        RepoAction::Add(add) => block_on(add_repository(&client, add)),
        RepoAction::List { json } => block_on(list_repositories(&client, json)),
        RepoAction::Remove { repository } => block_on(async {
            let id = crate::client::repository_id(&client, &repository).await?;
            client
                .empty(client.request(Method::DELETE, &format!("/api/v1/repositories/{id}")))
                .await?;
            println!("Removed {repository}.");
            Ok(())
        }),
    }
}

async fn add_repository(client: &Client, args: AddArgs) -> anyhow::Result<()> {
    let body = NewRepository {
        clone_url: &args.clone_url,
        name: args.name.as_deref(),
        forge: &args.forge,
        webhook_secret: args.webhook_secret.as_deref(),
        allow_unsigned: args.allow_unsigned,
        status_url: args.status_url.as_deref(),
        status_token: args.status_token.as_deref(),
    };
    let repo: Repository = client.post("/api/v1/repositories", &body).await?;
    if args.json {
        return print_json(&repo);
    }
    print!("{}", describe_added(&repo));
    Ok(())
}

/// What `repo add` prints: the id, and what to configure on the forge.
pub fn describe_added(repo: &Repository) -> String {
    let mut out = format!("Registered {} ({}).\n", repo.name, repo.id);
    out.push_str(&format!("Webhook URL: {}\n", repo.webhook_url));
    let secret = if repo.has_webhook_secret {
        "the secret you gave"
    } else {
        "no secret"
    };
    let setup = match repo.forge.as_str() {
        "gitlab" => format!(
            "In GitLab: Settings > Webhooks, this URL, {secret} as the secret token, push and \
             merge request events."
        ),
        _ => format!(
            "On the forge: add a webhook with this URL, content type application/json, {secret}, \
             push and pull request events."
        ),
    };
    out.push_str(&setup);
    out.push('\n');
    if !repo.has_webhook_secret && !repo.allow_unsigned {
        out.push_str(
            "warning: no webhook secret: deliveries will be refused until one is set (or \
             --allow-unsigned is given).\n",
        );
    }
    if repo.has_status_token {
        out.push_str("Commit statuses will be reported to the forge.\n");
    }
    out
}

async fn list_repositories(client: &Client, json: bool) -> anyhow::Result<()> {
    let list: RepositoryList = client.get("/api/v1/repositories").await?;
    if json {
        return print_json(&list);
    }
    if list.repositories.is_empty() {
        println!("No repositories yet: add one with `gantry repo add <clone-url>`.");
        return Ok(());
    }
    let mut rows = table(&["name", "id", "forge", "webhook", "statuses", "clone url"]);
    for repo in &list.repositories {
        let webhook = if repo.has_webhook_secret {
            "signed"
        } else if repo.allow_unsigned {
            "unsigned allowed"
        } else {
            "refused (no secret)"
        };
        rows.add_row(vec![
            repo.name.clone(),
            repo.id.clone(),
            repo.forge.clone(),
            webhook.to_owned(),
            if repo.has_status_token { "yes" } else { "no" }.to_owned(),
            repo.clone_url.clone(),
        ]);
    }
    print_table(&rows);
    Ok(())
}
