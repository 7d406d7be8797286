//! `reqwest::Client` guarded by a breaker with one layer, and a cached fallback.
//!
//! `reqwest::Client` is itself a `tower::Service<reqwest::Request>`, and with feature
//! `reqwest` [`HttpClassifier`] classifies its responses and errors (5xx and 429 fail,
//! other 4xx are ignored, connection errors and timeouts fail), so the client goes into
//! `ServiceBuilder` as it is: no `service_fn`, no hand-written classifier.
//!
//! A local axum server on 127.0.0.1:0 serves a price and fails on command. A 500 and
//! then a `503` with `Retry-After: 1` trip the breaker; the server asked for a second,
//! so the breaker stays open that long instead of the configured 200 ms. Meanwhile a
//! [`FallbackLayer`] answers with the last good price, so callers keep working and the
//! sick server gets no traffic. Then the server recovers, a probe closes the breaker,
//! the server shuts down and the example exits.
//!
//! ```sh
//! cargo run --example reqwest_client --features reqwest
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::{header, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Config, FallbackLayer, State};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Marks a response the fallback made up from the cache, not one from the server.
const FROM_CACHE: &str = "x-from-cache";

/// How the pricing server answers its next requests.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Healthy,
    Crashing,
    /// `503` with `Retry-After: 1`: "leave me alone for a second".
    Overloaded,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mode = Arc::new(Mutex::new(Mode::Healthy));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/price",
        get({
            let (mode, hits) = (Arc::clone(&mode), Arc::clone(&hits));
            move || async move {
                hits.fetch_add(1, SeqCst);
                let mode = *mode.lock().unwrap();
                match mode {
                    Mode::Healthy => (StatusCode::OK, "tea: 2.50").into_response(),
                    Mode::Crashing => (StatusCode::INTERNAL_SERVER_ERROR, "pricing engine crashed")
                        .into_response(),
                    Mode::Overloaded => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                        "too busy, come back in a second",
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/price", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    // The local server is never behind a proxy, whatever the environment says.
    let client = reqwest::Client::builder().no_proxy().build()?;
    let config = Config::builder()
        .name("pricing")
        .consecutive_failures(2)
        .open_duration(Duration::from_millis(200))
        .half_open_successes(1)
        .build()?;
    let breaker = CircuitBreakerLayer::new(config).classify(HttpClassifier::new());

    // While the breaker is open, the last good price, marked as cached.
    let last_good = Arc::new(RwLock::new(None::<String>));
    let cached = {
        let last_good = Arc::clone(&last_good);
        move |open: CircuitOpen| -> reqwest::Response {
            let text = last_good
                .read()
                .unwrap()
                .clone()
                .unwrap_or_else(|| format!("no price known ({open})"));
            Response::builder()
                .header(FROM_CACHE, "true")
                .body(text)
                .expect("a valid response")
                .into()
        }
    };

    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(cached))
        .layer(breaker.clone())
        .service(client.clone());

    for (step, next) in [
        ("healthy", Mode::Healthy),
        ("crashing", Mode::Crashing),
        ("overloaded", Mode::Overloaded), // the second failure: the breaker opens
        ("open", Mode::Overloaded),
    ] {
        *mode.lock().unwrap() = next;
        let request = client.get(&url).build()?;
        let response = svc.ready().await?.call(request).await?;
        show(step, response, &last_good).await?;
    }
    assert_eq!(breaker.breaker().state(), State::Open);
    assert_eq!(
        hits.load(SeqCst),
        3,
        "the open call was answered from the cache"
    );

    // Past the configured 200 ms, the breaker is still open: the server asked for 1 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = client.get(&url).build()?;
    let response = svc.ready().await?.call(request).await?;
    show("still open", response, &last_good).await?;
    let wait = breaker
        .breaker()
        .metrics()
        .retry_after
        .expect("open, so it knows when probing may begin");
    println!(
        "breaker is {}; server hits: {}; probing in {wait:?}",
        breaker.breaker().state(),
        hits.load(SeqCst)
    );
    assert_eq!(hits.load(SeqCst), 3);

    *mode.lock().unwrap() = Mode::Healthy;
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let request = client.get(&url).build()?;
    let response = svc.ready().await?.call(request).await?;
    assert!(
        !response.headers().contains_key(FROM_CACHE),
        "the probe reached the server"
    );
    show("recovered", response, &last_good).await?;
    println!("breaker is {}", breaker.breaker().state());
    assert_eq!(breaker.breaker().state(), State::Closed);

    drop(svc);
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}

/// Prints one answer and keeps a good price from the server for the fallback.
async fn show(
    step: &str,
    response: reqwest::Response,
    last_good: &RwLock<Option<String>>,
) -> Result<(), BoxError> {
    let from_cache = response.headers().contains_key(FROM_CACHE);
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let text = response.text().await?;
    if status.is_success() && !from_cache {
        *last_good.write().unwrap() = Some(text.clone());
    }
    println!(
        "{step:>10}: {status} {text:?}{}{}",
        retry_after
            .map(|after| format!(" (Retry-After: {})", after.to_str().unwrap_or("?")))
            .unwrap_or_default(),
        if from_cache { " (cached)" } else { "" }
    );
    Ok(())
}
