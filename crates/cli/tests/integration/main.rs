//! The `gantry` binary end to end: real git repositories in temporary directories, real
//! processes, output and exit codes as a user sees them.

mod act_cases;
mod client;
mod harness;
mod plan;
mod run;
mod server;
