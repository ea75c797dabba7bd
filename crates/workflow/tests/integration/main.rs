//! Integration tests of the workflow crate: oracles from GitHub's parser, the corpus of valid
//! and invalid workflows (with snapshots of the rendered diagnostics), hostile input.

mod bad_input;
mod corpus;
mod load;
mod oracle_if;
mod oracle_reader;
mod oracle_summaries;
mod support;
