//! A real axum server on 127.0.0.1:0 with a hit counter and a "fail on command"
//! switch: a client-side breaker opens, rejects without touching the server, half-opens
//! and closes; a server-side breaker answers `503` + `Retry-After` without running the
//! handler. Real sockets in real time; the open duration passes on Tokio's clock (see
//! `let_time_pass`), so no test sleeps. Every server is shut down at the end.
#![cfg(feature = "http")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::support::let_time_pass;
use crate::support::server::serve_axum;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::http::{handle_error, problem_json, HttpClassifier};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, Error, State};

const OPEN_FOR: Duration = Duration::from_millis(500);

/// What the server's handler does, and how often it ran.
#[derive(Debug, Clone, Default)]
struct Backend {
    hits: Arc<AtomicUsize>,
    fail: Arc<AtomicBool>,
}

impl Backend {
    async fn handle(self) -> (StatusCode, &'static str) {
        self.hits.fetch_add(1, SeqCst);
        if self.fail.load(SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "failing on command")
        } else {
            (StatusCode::OK, "ok")
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(SeqCst)
    }

    fn fail(&self, fail: bool) {
        self.fail.store(fail, SeqCst);
    }

    /// An app whose `/work` route is this backend's handler.
    fn app(&self) -> Router {
        let backend = self.clone();
        Router::new().route("/work", get(move || backend.clone().handle()))
    }
}

fn config() -> Config {
    Config::builder()
        .name("axum-backend")
        .consecutive_failures(3)
        .open_duration(OPEN_FOR)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

fn get_request(uri: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(uri).body(Empty::new()).unwrap()
}

/// `GET uri` through `svc` once it is ready.
async fn get_through<S>(svc: &mut S, uri: &str) -> Result<S::Response, S::Error>
where
    S: Service<http::Request<Empty<Bytes>>>,
{
    svc.ready().await?.call(get_request(uri)).await
}

#[tokio::test]
async fn a_client_breaker_opens_rejects_without_touching_the_server_and_closes() {
    let backend = Backend::default();
    let server = serve_axum(backend.app()).await;
    let uri = server.url("/work");

    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = layer.layer(client);

    // Healthy: calls reach the server.
    for _ in 0..2 {
        let response = get_through(&mut svc, &uri).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(backend.hits(), 2);

    // Fail on command: three 500s open the breaker.
    backend.fail(true);
    for _ in 0..3 {
        let response = get_through(&mut svc, &uri).await.unwrap();
        assert_eq!(response.status(), 500);
    }
    assert_eq!(layer.breaker().state(), State::Open);
    assert_eq!(backend.hits(), 5);

    // Open: rejected fast, the server sees nothing.
    for _ in 0..10 {
        match get_through(&mut svc, &uri).await {
            Err(Error::Open(open)) => assert!(open.retry_after.unwrap() <= OPEN_FOR),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    assert_eq!(backend.hits(), 5, "rejections never reach the server");
    assert_eq!(layer.breaker().metrics().rejected, 10);

    // After the open duration, one probe reaches the recovered server and closes.
    backend.fail(false);
    let_time_pass(OPEN_FOR).await;
    let response = get_through(&mut svc, &uri).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backend.hits(), 6);
    assert_eq!(layer.breaker().state(), State::Closed);
    // Closed -> Open -> HalfOpen -> Closed.
    assert_eq!(layer.breaker().metrics().state_changes, 3);

    drop(svc);
    assert!(
        server.stop().await,
        "the server did not shut down within 5 s"
    );
}

#[tokio::test]
async fn a_failed_probe_reopens_without_a_second_server_hit() {
    let backend = Backend::default();
    backend.fail(true);
    let server = serve_axum(backend.app()).await;
    let uri = server.url("/work");

    let layer = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = layer.layer(client);
    for _ in 0..3 {
        get_through(&mut svc, &uri).await.unwrap();
    }
    let_time_pass(OPEN_FOR).await;
    let probe = get_through(&mut svc, &uri).await.unwrap();
    assert_eq!(probe.status(), 500);
    assert_eq!(layer.breaker().state(), State::Open);
    assert!(matches!(
        get_through(&mut svc, &uri).await,
        Err(Error::Open(_))
    ));
    assert_eq!(backend.hits(), 4, "3 failures and 1 probe");

    drop(svc);
    assert!(
        server.stop().await,
        "the server did not shut down within 5 s"
    );
}

/// How a server-side breaker is wired into the app.
#[derive(Debug, Clone, Copy)]
enum Wiring {
    /// `HandleErrorLayer::new(handle_error)` around the breaker layer.
    HandleError,
    /// The breaker layer alone, `respond_unavailable()`: one layer.
    OneLayer,
    /// One layer answering with RFC 9457 problem+json.
    ProblemJson,
}

/// A server-side breaker, wired as `wiring` says, answers `503` + `Retry-After`
/// without running the handler, and recovers.
async fn answers_503_without_running_the_handler(wiring: Wiring) {
    let backend = Backend::default();
    let breaker = CircuitBreakerLayer::new(config()).classify(HttpClassifier::new());
    let app = match wiring {
        Wiring::HandleError => backend.app().route_layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .layer(breaker.clone()),
        ),
        Wiring::OneLayer => backend
            .app()
            .route_layer(breaker.clone().respond_unavailable()),
        Wiring::ProblemJson => backend
            .app()
            .route_layer(breaker.clone().respond_unavailable_with(problem_json)),
    };
    let server = serve_axum(app).await;
    let uri = server.url("/work");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    backend.fail(true);
    for _ in 0..3 {
        let response = client.request(get_request(&uri)).await.unwrap();
        assert_eq!(response.status(), 500);
    }
    assert_eq!(breaker.breaker().state(), State::Open);

    let response = client.request(get_request(&uri)).await.unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1, "under 500 ms rounds up to one whole second");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    match wiring {
        Wiring::HandleError | Wiring::OneLayer => {
            assert_eq!(content_type, "text/plain; charset=utf-8");
            assert_eq!(body, "service unavailable; retry later\n");
        }
        Wiring::ProblemJson => {
            assert_eq!(content_type, "application/problem+json");
            let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (&problem["status"], &problem["retry_after"]),
                (&503.into(), &1.into())
            );
        }
    }
    assert!(
        !body.contains("axum-backend"),
        "no breaker name leaks: {body}"
    );
    assert_eq!(backend.hits(), 3, "the handler did not run");

    backend.fail(false);
    let_time_pass(OPEN_FOR).await;
    let response = client.request(get_request(&uri)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(breaker.breaker().state(), State::Closed);
    assert_eq!(backend.hits(), 4);

    drop(client);
    assert!(
        server.stop().await,
        "the server did not shut down within 5 s"
    );
}

#[tokio::test]
async fn a_server_side_breaker_answers_503_with_retry_after_without_running_the_handler() {
    answers_503_without_running_the_handler(Wiring::HandleError).await;
}

#[tokio::test]
async fn one_layer_answers_503_with_a_body_that_names_nothing_internal() {
    answers_503_without_running_the_handler(Wiring::OneLayer).await;
}

#[tokio::test]
async fn one_layer_answers_problem_json_when_asked() {
    answers_503_without_running_the_handler(Wiring::ProblemJson).await;
}
