//! The examples, tested by running their binaries (`target/<profile>/examples/<name>`,
//! built by `cargo test`, or here on demand; see `support::example`): the flaky-backend
//! demo in paused Tokio time and over real HTTP, the balanced-endpoints example over real
//! HTTP (feature `http`), and the health endpoint.
//!
//! `cargo test --test examples`

#[path = "../support/mod.rs"]
mod support;

mod balanced;
mod demo;
mod flaky_backend;
mod flaky_backend_http;
mod fleet;
mod health_endpoint;
mod targets;
