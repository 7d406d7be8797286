//! An axum server whose `/inventory` route is guarded by a circuit breaker.
//!
//! The handler calls a flaky downstream (simulated here, switched to failing half-way).
//! The breaker counts the handler's 5xx answers; once open it answers `503 Service
//! Unavailable` with `Retry-After` (one layer: `respond_unavailable()`), without running
//! the handler, so the sick downstream gets a rest. A hyper client drives the scenario,
//! then the server shuts down gracefully and the example exits.
//!
//! ```sh
//! cargo run --example axum_server --features http
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AppState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitBreakerLayer, Config};

/// The handler's downstream: a database or another service, healthy until told not to be.
#[derive(Debug, Default)]
struct Downstream {
    sick: AtomicBool,
    calls: AtomicUsize,
}

async fn inventory(AppState(downstream): AppState<Arc<Downstream>>) -> (StatusCode, String) {
    downstream.calls.fetch_add(1, SeqCst);
    if downstream.sick.load(SeqCst) {
        (
            StatusCode::BAD_GATEWAY,
            "inventory database unreachable".into(),
        )
    } else {
        (StatusCode::OK, "42 teapots in stock".into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let open_for = Duration::from_secs(1);
    let breaker = CircuitBreakerLayer::new(
        Config::builder()
            .name("inventory")
            .consecutive_failures(3)
            .open_duration(open_for)
            .half_open_successes(1) // one good probe closes it
            .build()?,
    )
    .classify(HttpClassifier::new()); // 5xx fail, 4xx are the caller's fault

    let downstream = Arc::new(Downstream::default());
    let app = Router::new()
        .route("/inventory", get(inventory))
        // A rejection is answered 503 + Retry-After. With other layers that fail
        // (a timeout), use `HandleErrorLayer::new(http::handle_error)` around them instead.
        .route_layer(breaker.clone().respond_unavailable())
        .with_state(Arc::clone(&downstream));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/inventory", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    println!("serving {url}");

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let get = |label: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client.get(url.parse()?).await?;
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| format!(" (Retry-After: {}s)", value.to_str().unwrap_or("?")))
                .unwrap_or_default();
            println!("{label:>12}: {}{retry_after}", response.status());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(response.status())
        }
    };

    get("healthy").await?;
    downstream.sick.store(true, SeqCst);
    for _ in 0..3 {
        get("sick").await?;
    }
    println!("breaker is {}", breaker.breaker().state());
    let calls_before = downstream.calls.load(SeqCst);
    for _ in 0..3 {
        assert_eq!(get("open").await?, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(
        downstream.calls.load(SeqCst),
        calls_before,
        "the downstream got a rest"
    );

    downstream.sick.store(false, SeqCst);
    tokio::time::sleep(open_for).await;
    assert_eq!(get("recovered").await?, StatusCode::OK);
    println!("breaker is {}", breaker.breaker().state());

    drop(client);
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}
