//! Integration tests of gantry-expr: the oracle suites and robustness properties.

mod act;
mod api;
mod expressions;
mod hashfiles;
mod robustness;
mod support;
