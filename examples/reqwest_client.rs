//! reqwest through `tower::service_fn`, guarded by a breaker, with a cached fallback.
//!
//! A local axum server on 127.0.0.1:0 serves a price and fails on command. The client
//! is reqwest wrapped in `service_fn`; a closure classifier reuses
//! [`HttpClassifier::classify_status`] (5xx fail, 4xx ignored). A [`FallbackLayer`]
//! answers with the last good price while the breaker is open, so callers keep working
//! and the sick server gets no traffic. Then the server recovers, the breaker closes,
//! the server shuts down and the example exits.
//!
//! ```sh
//! cargo run --example reqwest_client --features http
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Config, FallbackLayer, Outcome};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the client hands back: the status and the body text.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    text: String,
    from_cache: bool,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let failing = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/price",
        get({
            let (failing, hits) = (Arc::clone(&failing), Arc::clone(&hits));
            move || async move {
                hits.fetch_add(1, SeqCst);
                if failing.load(SeqCst) {
                    (StatusCode::INTERNAL_SERVER_ERROR, "pricing engine crashed")
                } else {
                    (StatusCode::OK, "tea: 2.50")
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

    // reqwest as a Tower service; the last good answer is kept for the fallback.
    let client = reqwest::Client::new();
    let last_good = Arc::new(RwLock::new(None::<String>));
    let fetch = service_fn({
        let last_good = Arc::clone(&last_good);
        move |url: String| {
            let (client, last_good) = (client.clone(), Arc::clone(&last_good));
            async move {
                let response = client.get(url).send().await?;
                let status = response.status();
                let text = response.text().await?;
                if status.is_success() {
                    *last_good.write().unwrap() = Some(text.clone());
                }
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    text,
                    from_cache: false,
                })
            }
        }
    });

    let statuses = HttpClassifier::new();
    let breaker = CircuitBreakerLayer::new(
        Config::builder()
            .name("pricing")
            .consecutive_failures(2)
            .open_duration(Duration::from_millis(200))
            .half_open_successes(1)
            .build()?,
    )
    .classify(
        move |result: Result<&Answer, &reqwest::Error>| match result {
            Ok(answer) => statuses.classify_status(answer.status),
            Err(_) => Outcome::Failure, // connection refused, reset, ...
        },
    );
    let cached = move |open: CircuitOpen| Answer {
        status: StatusCode::OK,
        text: last_good
            .read()
            .unwrap()
            .clone()
            .unwrap_or_else(|| format!("no price known ({open})")),
        from_cache: true,
    };
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(cached))
        .layer(breaker.clone())
        .service(fetch);

    for step in ["healthy", "crashing", "crashing", "open", "open"] {
        failing.store(step == "crashing", SeqCst);
        let answer = svc.ready().await?.call(url.clone()).await?;
        println!(
            "{step:>9}: {} {:?}{}",
            answer.status,
            answer.text,
            if answer.from_cache { " (cached)" } else { "" }
        );
    }
    assert_eq!(
        hits.load(SeqCst),
        3,
        "the open calls were answered from the cache"
    );
    println!(
        "breaker is {}; server hits: {}",
        breaker.breaker().state(),
        hits.load(SeqCst)
    );

    tokio::time::sleep(Duration::from_millis(250)).await;
    let answer = svc.ready().await?.call(url).await?;
    println!(
        "recovered: {} {:?}; breaker is {}",
        answer.status,
        answer.text,
        breaker.breaker().state()
    );
    assert!(!answer.from_cache);

    drop(svc);
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}
