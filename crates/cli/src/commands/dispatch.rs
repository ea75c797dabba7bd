//! `gantry dispatch`: run a workflow with `on: workflow_dispatch` by hand, at a branch or tag,
//! with inputs. Needs a write token.

use super::runs::RunSummary;
use crate::client::{Client, ServerArgs, block_on, print_json, repository_id};
use crate::exit::CommandError;
use anyhow::anyhow;
use clap::Args;
use indexmap::IndexMap;
use serde::Deserialize;

/// Run a workflow by hand (its `on: workflow_dispatch` trigger).
///
/// The server reads the workflow at the ref's commit and checks the inputs against
/// `on.workflow_dispatch.inputs` (types, choices, required ones); a mistake is reported and
/// nothing runs.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gantry dispatch acme/site deploy.yml --ref main --input environment=staging
  gantry dispatch acme/site \"Deploy site\" --ref v1.4.0 --input environment=production \\
      --input dry-run=false
  gantry dispatch acme/site .github/workflows/nightly.yml   # on the default branch")]
pub struct DispatchArgs {
    /// The repository (`owner/repo` or its id).
    pub repo: String,
    /// The workflow: its file (`deploy.yml`, `.github/workflows/deploy.yml`) or its name.
    pub workflow: String,
    /// The branch or tag to run at (default: main, else master).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// An input, as NAME=VALUE. Repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `NAME=VALUE` (the value may contain `=`).
pub fn parse_input(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{text}`: the name before `=` is empty"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct DispatchAnswer {
    runs: Vec<RunSummary>,
}

pub fn cmd_dispatch(args: DispatchArgs) -> Result<(), CommandError> {
    let mut inputs: IndexMap<String, String> = IndexMap::new();
    for (name, value) in &args.inputs {
        if inputs.insert(name.clone(), value.clone()).is_some() {
            return Err(CommandError::Usage(anyhow!("input {name} is given twice")));
        }
    }
    let client = Client::new(&args.server)?;
    block_on(async {
        let id = repository_id(&client, &args.repo).await?;
        let mut body = serde_json::json!({ "workflow": args.workflow, "inputs": inputs });
        if let Some(git_ref) = &args.git_ref {
            body["ref"] = serde_json::Value::String(git_ref.clone());
        }
        let answer: DispatchAnswer = client
            .post(&format!("/api/v1/repositories/{id}/dispatch"), &body)
            .await?;
        if args.json {
            return print_json(&answer);
        }
        for run in &answer.runs {
            println!(
                "Started {} #{} {} at {} ({}).",
                run.repository, run.number, run.workflow_name, run.git_ref, run.id
            );
            println!("Follow it: gantry logs -f {}", run.id);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::parse_input;

    #[test]
    fn inputs_are_name_equals_value() {
        assert_eq!(parse_input("env=prod"), Ok(("env".into(), "prod".into())));
        assert_eq!(parse_input("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(parse_input("flag="), Ok(("flag".into(), String::new())));
        assert!(parse_input("novalue").is_err());
        assert!(parse_input("=x").is_err());
    }
}
