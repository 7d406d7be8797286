//! What operators see: events and `tracing` output, the metrics snapshot, health, the
//! registry's report, and the Prometheus export (feature `metrics`).
//!
//! `cargo test --features metrics --test observability`

#[path = "../support/mod.rs"]
mod support;

mod events;
mod health;
mod metrics_snapshot;
mod prometheus;
mod registry;
