//! `gantry server` and `gantry agent` end to end, as real processes: a server on loopback with
//! its own SQLite data directory, agents registered with it, git repositories in temporary
//! directories (file:// clone URLs), webhooks signed with HMAC-SHA256 and posted over HTTP,
//! results read through the REST API. Faults are real too: processes are killed with SIGKILL.
//!
//! Scenarios from RELIABILITY.md: A1 (agent lost mid-job), A5 (cancel of a step that ignores
//! SIGTERM), C1/C2 (server killed and restarted with queued and running jobs and an
//! unprocessed webhook), C3 (duplicate deliveries), S1 (a burst of webhooks on SQLite), H1
//! (forged and malformed webhooks), K1/K3 (secrets masked everywhere, none for forks), A4
//! (an agent stopped with SIGTERM drains, with SIGQUIT cancels and its job is retried).

mod cancel;
mod faults;
mod harness;
mod pipeline;
mod secrets;
mod signals;
mod webhooks;
