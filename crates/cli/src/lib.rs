//! The `gantry` command: one module per subcommand under `commands/`, each an args struct whose
//! doc comments are its `--help` and a `cmd_<name>` function. This crate owns the terminal: it
//! prints, picks colours and exit codes; the crates below it never print.

pub mod client;
pub mod commands;
pub mod dotenv;
pub mod event;
pub mod exit;
pub mod repo;
pub mod run;
pub mod style;

use clap::{Parser, Subcommand};
use exit::CommandError;
use std::process::ExitCode;

/// Gantry: self-hosted CI for GitHub Actions workflows, and the same runs on your laptop.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Validate(commands::validate::ValidateArgs),
    Plan(commands::plan::PlanArgs),
    Expr(commands::expr::ExprArgs),
    Run(Box<commands::run::RunArgs>),
    Server(Box<commands::server::ServerArgs>),
    Agent(commands::agent::AgentArgs),
    Repo(commands::repo::RepoArgs),
    Runs(commands::runs::RunsArgs),
    Logs(commands::logs::LogsArgs),
    Cancel(commands::cancel::CancelArgs),
    Rerun(commands::rerun::RerunArgs),
    Dispatch(commands::dispatch::DispatchArgs),
    Agents(commands::agents::AgentsArgs),
    Queue(commands::queue::QueueArgs),
    Secret(commands::secret::SecretArgs),
    Token(commands::token::TokenArgs),
    AgentToken(commands::token::AgentTokenArgs),
}

/// Parses the command line, runs the command, and turns its result into an exit code:
/// 0 ok, 1 a run failed, 2 usage error or invalid workflow, 130 interrupted.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}

pub fn run(cli: Cli) -> Result<(), CommandError> {
    match cli.command {
        Command::Validate(args) => commands::validate::cmd_validate(args),
        Command::Plan(args) => commands::plan::cmd_plan(args),
        Command::Expr(args) => commands::expr::cmd_expr(args),
        Command::Run(args) => commands::run::cmd_run(*args),
        Command::Server(args) => commands::server::cmd_server(*args),
        Command::Agent(args) => commands::agent::cmd_agent(args),
        Command::Repo(args) => commands::repo::cmd_repo(args),
        Command::Runs(args) => commands::runs::cmd_runs(args),
        Command::Logs(args) => commands::logs::cmd_logs(args),
        Command::Cancel(args) => commands::cancel::cmd_cancel(args),
        Command::Rerun(args) => commands::rerun::cmd_rerun(args),
        Command::Dispatch(args) => commands::dispatch::cmd_dispatch(args),
        Command::Agents(args) => commands::agents::cmd_agents(args),
        Command::Queue(args) => commands::queue::cmd_queue(args),
        Command::Secret(args) => commands::secret::cmd_secret(args),
        Command::Token(args) => commands::token::cmd_token(args),
        Command::AgentToken(args) => commands::token::cmd_agent_token(args),
    }
}
