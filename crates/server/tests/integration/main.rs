//! The server's integration tests: one binary, a module per area.

mod api;
mod browser;
mod forge;
mod secret;
mod store;
mod web;
