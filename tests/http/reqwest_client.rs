//! Feature `reqwest`: a real `reqwest::Client` used directly as the service behind one
//! `CircuitBreakerLayer` with `HttpClassifier`, against a real axum server on
//! 127.0.0.1:0 that counts its hits. Server errors trip the breaker and the next call
//! never reaches the server; 404s are ignored; a refused connection and a client
//! timeout count as failures; a caller's bad URL is ignored; `error_for_status` errors
//! go by their status; a tripping `503` with `Retry-After` keeps the breaker open that
//! long. Real sockets in real time; the only waits are reqwest's own short timeout and
//! open durations passed on Tokio's clock (`let_time_pass`), so no test sleeps.
#![cfg(feature = "reqwest")]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::support::let_time_pass;
use crate::support::server::{serve_axum, Running};
use axum::extract::{Path, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{
    CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService, CircuitOpen, Config, Error, State,
};

/// The configured open duration; `Retry-After: 120` must outlast it.
const OPEN_FOR: Duration = Duration::from_secs(5);
const RETRY_AFTER: Duration = Duration::from_secs(120);
const TRIP_AFTER: u32 = 3;

/// A running axum server whose every route counts its hits:
///
/// - `/status/{code}` answers with that status;
/// - `/unavailable` answers `503` with `Retry-After: 120`;
/// - `/hang` never answers.
struct TestServer {
    server: Running<std::io::Error>,
    hits: Hits,
}

/// Requests that reached a handler, shared by every route.
type Hits = Arc<AtomicUsize>;

async fn status(AxumState(hits): AxumState<Hits>, Path(code): Path<u16>) -> StatusCode {
    hits.fetch_add(1, SeqCst);
    StatusCode::from_u16(code).expect("a valid status")
}

async fn unavailable(AxumState(hits): AxumState<Hits>) -> impl IntoResponse {
    hits.fetch_add(1, SeqCst);
    let retry_after = RETRY_AFTER.as_secs().to_string();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after)],
    )
}

async fn hang(AxumState(hits): AxumState<Hits>) {
    hits.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
}

impl TestServer {
    async fn start() -> TestServer {
        let hits = Hits::default();
        let app = Router::new()
            .route("/status/{code}", get(status))
            .route("/unavailable", get(unavailable))
            .route("/hang", get(hang))
            .with_state(Arc::clone(&hits));
        TestServer {
            server: serve_axum(app).await,
            hits,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Requests that reached a handler.
    fn hits(&self) -> usize {
        self.hits.load(SeqCst)
    }

    /// Shuts the server down; a `/hang` handler may hold it until it is aborted.
    async fn stop(self) {
        self.server.stop().await;
    }
}

fn config() -> Config {
    Config::builder()
        .name("reqwest-backend")
        .consecutive_failures(TRIP_AFTER)
        .open_duration(OPEN_FOR)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

/// A client that talks to the local server directly, whatever proxy the environment
/// names.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `GET url` through `svc`, the request built by `client` as callers do.
async fn get_through<S>(
    svc: &mut S,
    client: &reqwest::Client,
    url: &str,
) -> Result<reqwest::Response, S::Error>
where
    S: Service<reqwest::Request, Response = reqwest::Response>,
{
    let request = client.get(url).build().expect("a valid request");
    svc.ready().await?.call(request).await
}

/// The rejection, or a panic naming what came back instead.
fn expect_rejection(result: Result<reqwest::Response, Error<reqwest::Error>>) -> CircuitOpen {
    match result {
        Err(Error::Open(open)) => open,
        Ok(response) => panic!("expected a rejection, got {}", response.status()),
        Err(Error::Inner(error)) => panic!("expected a rejection, got {error}"),
    }
}

/// After the open period, the next call is a probe: it reaches the (healthy) server, the
/// first request since the trip, and closes the breaker.
async fn a_probe_reaches_the_server_and_closes(
    svc: &mut CircuitBreakerService<reqwest::Client, HttpClassifier>,
    client: &reqwest::Client,
    server: &TestServer,
    breaker: &CircuitBreaker,
) {
    let response = get_through(svc, client, &server.url("/status/200"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits(), TRIP_AFTER as usize + 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn server_errors_trip_the_breaker_and_the_next_call_never_reaches_the_server() {
    let server = TestServer::start().await;
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    // The whole integration: one layer around the client itself.
    let mut svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(client.clone());

    let url = server.url("/status/500");
    for _ in 0..TRIP_AFTER {
        let response = get_through(&mut svc, &client, &url).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(layer.breaker().state(), State::Open);
    assert_eq!(layer.breaker().metrics().failures, u64::from(TRIP_AFTER));
    assert_eq!(server.hits(), TRIP_AFTER as usize);

    let open = expect_rejection(get_through(&mut svc, &client, &url).await);
    assert_eq!(&*open.name, "reqwest-backend");
    assert_eq!(
        server.hits(),
        TRIP_AFTER as usize,
        "rejected without a request"
    );
    assert_eq!(layer.breaker().metrics().rejected, 1);

    // Once the open duration passed, a probe reaches the (now healthy) server and closes.
    let_time_pass(OPEN_FOR).await;
    a_probe_reaches_the_server_and_closes(&mut svc, &client, &server, layer.breaker()).await;
    server.stop().await;
}

#[tokio::test]
async fn not_found_responses_are_ignored_and_never_trip_the_breaker() {
    let server = TestServer::start().await;
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(client.clone());

    let url = server.url("/status/404");
    for _ in 0..10 * TRIP_AFTER {
        let response = get_through(&mut svc, &client, &url).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let metrics = layer.breaker().metrics();
    assert_eq!(metrics.state, State::Closed);
    assert_eq!(metrics.ignored, u64::from(10 * TRIP_AFTER));
    assert_eq!((metrics.failures, metrics.rejected), (0, 0));
    assert_eq!(server.hits(), 10 * TRIP_AFTER as usize);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connection_counts_as_a_failure() {
    // A port nothing listens on: bound by us, then given back.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/status/200");
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(client.clone());

    for _ in 0..TRIP_AFTER {
        match get_through(&mut svc, &client, &url).await {
            Err(Error::Inner(error)) => assert!(error.is_connect(), "{error:?}"),
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
    assert_eq!(layer.breaker().metrics().failures, u64::from(TRIP_AFTER));
    assert_eq!(layer.breaker().state(), State::Open);
    expect_rejection(get_through(&mut svc, &client, &url).await);
}

#[tokio::test]
async fn a_client_timeout_counts_as_a_failure() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(client.clone());

    let url = server.url("/hang");
    match get_through(&mut svc, &client, &url).await {
        Err(Error::Inner(error)) => assert!(error.is_timeout(), "{error:?}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        server.hits(),
        1,
        "the request reached the handler, which hung"
    );
    let metrics = layer.breaker().metrics();
    assert_eq!((metrics.failures, metrics.consecutive_failures), (1, 1));

    // Enough of them trip the breaker like any other failure.
    for _ in 1..TRIP_AFTER {
        let result = get_through(&mut svc, &client, &url).await;
        assert!(matches!(result, Err(Error::Inner(ref error)) if error.is_timeout()));
    }
    assert_eq!(layer.breaker().state(), State::Open);
    expect_rejection(get_through(&mut svc, &client, &url).await);
    assert_eq!(server.hits(), TRIP_AFTER as usize);
    server.stop().await;
}

#[tokio::test]
async fn a_tripping_503_with_retry_after_keeps_the_breaker_open_that_long() {
    let server = TestServer::start().await;
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(client.clone());

    let url = server.url("/unavailable");
    for _ in 0..TRIP_AFTER {
        let response = get_through(&mut svc, &client, &url).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "120");
    }
    assert_eq!(layer.breaker().state(), State::Open);
    let floor = layer.breaker().metrics().retry_after.unwrap();
    assert!(OPEN_FOR < floor && floor <= RETRY_AFTER, "{floor:?}");
    let open = expect_rejection(get_through(&mut svc, &client, &url).await);
    let retry_after = open.retry_after.unwrap();
    assert!(
        OPEN_FOR < retry_after && retry_after <= RETRY_AFTER,
        "{retry_after:?}"
    );

    // Well past the configured open duration: still open, the server asked for 120 s.
    let_time_pass(OPEN_FOR * 4).await;
    expect_rejection(get_through(&mut svc, &client, &url).await);
    assert_eq!(server.hits(), TRIP_AFTER as usize, "no request while open");

    // Once the 120 s are over, a probe reaches the server again.
    let_time_pass(RETRY_AFTER - OPEN_FOR * 4).await;
    a_probe_reaches_the_server_and_closes(&mut svc, &client, &server, layer.breaker()).await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_the_caller_built_wrong_is_ignored() {
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(client.clone());

    // reqwest refuses the scheme inside the call, before any connection is made.
    for _ in 0..2 * TRIP_AFTER {
        match get_through(&mut svc, &client, "ftp://127.0.0.1/price").await {
            Err(Error::Inner(error)) => assert!(error.is_builder(), "{error:?}"),
            other => panic!("expected a builder error, got {other:?}"),
        }
    }
    let metrics = layer.breaker().metrics();
    assert_eq!(metrics.state, State::Closed);
    assert_eq!(
        (metrics.ignored, metrics.failures),
        (u64::from(2 * TRIP_AFTER), 0)
    );
}

#[tokio::test]
async fn error_for_status_errors_are_classified_by_their_status() {
    let server = TestServer::start().await;
    let client = client();
    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    // Inside the breaker, a bad status becomes a `reqwest::Error` with `is_status()`.
    let mut svc = ServiceBuilder::new()
        .layer(layer.clone())
        .and_then(|response: reqwest::Response| async move { response.error_for_status() })
        .service(client.clone());

    for _ in 0..10 {
        match get_through(&mut svc, &client, &server.url("/status/404")).await {
            Err(Error::Inner(error)) => assert!(error.is_status(), "{error:?}"),
            other => panic!("expected a status error, got {other:?}"),
        }
    }
    assert_eq!(layer.breaker().metrics().ignored, 10);
    assert_eq!(layer.breaker().state(), State::Closed);

    for _ in 0..TRIP_AFTER {
        match get_through(&mut svc, &client, &server.url("/status/502")).await {
            Err(Error::Inner(error)) => {
                assert_eq!(error.status(), Some(StatusCode::BAD_GATEWAY))
            }
            other => panic!("expected a status error, got {other:?}"),
        }
    }
    assert_eq!(layer.breaker().metrics().failures, u64::from(TRIP_AFTER));
    assert_eq!(layer.breaker().state(), State::Open);
    server.stop().await;
}
