//! GitHub Actions workflow files: YAML with a location for every value, the typed model,
//! validation diagnostics, trigger and filter evaluation, matrix expansion and planning.
//! Pure: no processes, no network. The only YAML parsing in Gantry happens in `yaml`.

pub mod action;
pub mod diagnostic;
pub mod filter;
pub mod load;
pub mod matrix;
pub mod model;
pub mod parse;
pub mod plan;
pub mod schema;
pub mod span;
pub mod spec;
pub mod trigger;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use parse::{ParseOptions, ParsedWorkflow, parse_workflow, parse_workflow_with};
