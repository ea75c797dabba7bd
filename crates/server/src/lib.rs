//! The Gantry coordinator: receives webhooks, stores everything durably, plans runs, hands
//! jobs to agents that poll for them, collects their logs and results, and serves the REST API
//! and web UI. It never runs jobs itself: it does not link the runner or the Docker client.
//! See docs/server.md.

pub mod agent_api;
pub mod api;
pub mod app;
pub mod config;
pub mod cron;
pub mod error;
pub mod forge;
pub mod ingest;
pub mod mirror;
pub mod run_state;
pub mod scheduler;
pub mod secret;
pub mod status;
pub mod store;
pub mod web;
pub mod webhook;
