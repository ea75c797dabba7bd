//! The runner end to end on the host backend: real processes, real files, real git.

mod harness;
mod jobs;
