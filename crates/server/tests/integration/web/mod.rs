//! The web UI through the router: pages, escaping, 404s, sign-in, and the live log stream.
//! The real-browser test of live logs is `browser.rs`.

pub mod fixture;

mod auth;
mod live;
mod pages;
