//! Breaker metrics served to Prometheus with `metrics-exporter-prometheus` (feature
//! `metrics`).
//!
//! `cargo run --example prometheus --features metrics` serves `GET /metrics` on
//! 127.0.0.1 (port from `PORT`, default: any free port) and prints the address. Each
//! scrape first copies every registered breaker's counters into the recorder
//! (`Registry::export_metrics`), then renders the Prometheus text format.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_circuit_breaker::{Config, Registry};

/// What a scrape needs: the breakers and the recorder's handle.
#[derive(Clone)]
pub struct Scrape {
    /// The breakers to export.
    pub registry: Registry,
    /// Renders the recorder's series.
    pub handle: PrometheusHandle,
}

/// `GET /metrics`: export the breakers, then render every series.
pub async fn scrape(State(scrape): State<Scrape>) -> String {
    scrape.registry.export_metrics();
    scrape.handle.render()
}

/// The routes of this example: `/metrics`.
pub fn router(scrape_state: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(scrape_state)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tower_circuit_breaker::export::describe_metrics();

    let registry = Registry::new();
    let config = Config::builder()
        .consecutive_failures(2)
        .open_duration(Duration::from_secs(30))
        .build()?;
    let inventory = registry.get_or_insert("inventory", config);
    inventory.try_acquire()?.success();
    inventory.try_acquire()?.failure();
    inventory.try_acquire()?.failure(); // trips: state{state="open"} 1

    let port = std::env::var("PORT").unwrap_or_else(|_| "0".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("GET http://{}/metrics", listener.local_addr()?);
    axum::serve(listener, router(Scrape { registry, handle })).await?;
    Ok(())
}
