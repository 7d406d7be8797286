//! A hyper-util legacy client, used as a Tower service and guarded by a breaker.
//!
//! A local axum server on 127.0.0.1:0 answers `503 Service Unavailable` with
//! `Retry-After: 1` while it is "overloaded". The breaker ([`HttpClassifier`]) trips on
//! those 503s and, honouring `Retry-After`, stays open for a full second although its
//! own open duration is 200 ms. Open, calls fail fast without reaching the server.
//! Then the server recovers, a probe succeeds, the breaker closes, the server shuts
//! down and the example exits.
//!
//! ```sh
//! cargo run --example hyper_client --features http
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitBreakerLayer, Config, Error};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The server: counts hits, answers 503 + Retry-After while overloaded.
    let overloaded = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/quote",
        get({
            let (overloaded, hits) = (Arc::clone(&overloaded), Arc::clone(&hits));
            move || async move {
                hits.fetch_add(1, SeqCst);
                if overloaded.load(SeqCst) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                        "busy",
                    )
                } else {
                    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], "42")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url: hyper::Uri = format!("http://{}/quote", listener.local_addr()?).parse()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    // The client: hyper-util's legacy client is a tower::Service<Request<B>>.
    let breaker = CircuitBreakerLayer::new(
        Config::builder()
            .name("quotes")
            .consecutive_failures(2)
            .open_duration(Duration::from_millis(200))
            .half_open_successes(1)
            .build()?,
    )
    .classify(HttpClassifier::new());
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = ServiceBuilder::new().layer(breaker.clone()).service(client);

    for label in ["healthy", "overloaded", "overloaded", "open", "open"] {
        if label == "overloaded" {
            overloaded.store(true, SeqCst);
        }
        let request = hyper::Request::get(url.clone()).body(Empty::<Bytes>::new())?;
        match svc.ready().await?.call(request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                println!("{label:>10}: {status} {:?}", String::from_utf8_lossy(&body));
            }
            Err(Error::Open(open)) => println!("{label:>10}: failed fast: {open}"),
            Err(Error::Inner(e)) => println!("{label:>10}: transport error: {e}"),
        }
    }
    let seen = hits.load(SeqCst);
    println!("server hits so far: {seen} (the open calls never reached it)");
    assert_eq!(seen, 3);

    // Retry-After: 1 outlasts the 200 ms open duration.
    overloaded.store(false, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = hyper::Request::get(url.clone()).body(Empty::<Bytes>::new())?;
    let still_open = matches!(svc.ready().await?.call(request).await, Err(Error::Open(_)));
    println!("after 300 ms: still open = {still_open} (the server asked for 1 s)");
    assert!(still_open);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let request = hyper::Request::get(url).body(Empty::<Bytes>::new())?;
    let response = svc.ready().await?.call(request).await?;
    println!(
        "after 1.1 s: {} -> breaker {}",
        response.status(),
        breaker.breaker().state()
    );

    drop(svc);
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}
