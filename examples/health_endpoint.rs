//! An axum health endpoint reporting every breaker of a [`Registry`] as JSON.
//!
//! `cargo run --example health_endpoint` serves `GET /health` on 127.0.0.1 (port from
//! `PORT`, default: any free port) and prints the address; `curl` it to see
//!
//! ```text
//! {"health":"red","breakers":[{"name":"inventory","state":"open","health":"red",...}]}
//! ```
//!
//! The endpoint always answers `200 OK`: a downstream's open breaker says the
//! downstream is sick, not that this process should be restarted. Read `health` in the
//! body (green, yellow or red) to alert on it.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_circuit_breaker::{Config, Registry};

/// `GET /health`: the JSON [`HealthReport`](tower_circuit_breaker::HealthReport) of
/// every registered breaker.
pub async fn health(State(registry): State<Registry>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        registry.health().to_json(),
    )
}

/// The routes of this example: `/health` over `registry`.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(registry)
}

// tests/examples/health_endpoint.rs runs this example and checks its report.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::new();
    let config = Config::builder()
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(3_600))
        .build()?;
    let users = registry.get_or_insert("users", config.clone());
    users.try_acquire()?.success(); // green
    let inventory = registry.get_or_insert("inventory", config);
    inventory.try_acquire()?.failure(); // trips: the report shows it red for an hour

    let port = std::env::var("PORT").unwrap_or_else(|_| "0".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("GET http://{}/health", listener.local_addr()?);
    axum::serve(listener, router(registry)).await?;
    Ok(())
}
