//! One module per subcommand: an args struct whose doc comments are the `--help` text, and a
//! `cmd_<name>` function.

pub mod agent;
pub mod agents;
pub mod cancel;
pub mod dispatch;
pub mod expr;
pub mod logs;
pub mod plan;
pub mod queue;
pub mod repo;
pub mod rerun;
pub mod run;
pub mod runs;
pub mod secret;
pub mod server;
pub mod token;
pub mod validate;
