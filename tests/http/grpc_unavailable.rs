//! A real tonic server and client on 127.0.0.1: a rejection reaches the tonic caller as
//! `UNAVAILABLE` with `grpc-retry-pushback-ms`, whether the breaker guards the client's
//! `Channel` or the server (`Server::builder().layer(..)`), each wired with one layer,
//! `CircuitBreakerLayer::new(cfg).convert_errors(IntoStatus)`.
//!
//! Messages are hand-written prost types with `ProstCodec` (no `protoc`), as in
//! grpc_trailers.rs. No test sleeps: the breakers trip on failures or are forced
//! open, and an open period passes on Tokio's clock only (`support::let_time_pass`).
#![cfg(feature = "tonic")]

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::let_time_pass;
use crate::support::server::Signal;
use tonic::body::Body;
use tonic::client::GrpcService;
use tonic::codegen::http::{self, uri::PathAndQuery};
use tonic::server::UnaryService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};
use tower_circuit_breaker::tonic::{status, IntoStatus, RETRY_PUSHBACK_MS};
use tower_circuit_breaker::{BoxError, CircuitBreakerLayer, CircuitOpen, Config, Outcome, State};

/// Long against the real time a test takes, so the breaker cannot leave `Open` by
/// itself mid-test; it passes on Tokio's clock when a test needs it to.
const OPEN_FOR: Duration = Duration::from_secs(10);
const PATH: &str = "/test.Echo/Ping";
/// The message of every rejection status.
const REJECTED: &str = "service unavailable; retry later";

/// Request and response.
#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(uint32, tag = "1")]
    n: u32,
}

/// The server: echoes `n`, or answers `UNAVAILABLE` (a trailers-only response) while
/// down; counts the calls that reach it.
#[derive(Debug, Clone, Default)]
struct Echo {
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Echo {
    fn down() -> Echo {
        let echo = Echo::default();
        echo.down.store(true, SeqCst);
        echo
    }

    fn hits(&self) -> usize {
        self.hits.load(SeqCst)
    }

    fn recover(&self) {
        self.down.store(false, SeqCst);
    }
}

impl UnaryService<Ping> for Echo {
    type Response = Ping;
    type Future = Ready<Result<tonic::Response<Ping>, Status>>;

    fn call(&mut self, request: tonic::Request<Ping>) -> Self::Future {
        self.hits.fetch_add(1, SeqCst);
        ready(if self.down.load(SeqCst) {
            Err(Status::unavailable("backend sick"))
        } else {
            Ok(tonic::Response::new(request.into_inner()))
        })
    }
}

/// The tonic server side: routes every request to the unary method.
impl Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let echo = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Ping, Ping>::default());
            Ok(grpc.unary(echo, request).await)
        })
    }
}

/// Counts the codes of a sick server as failures. tonic sends a unary call's error as a
/// trailers-only response, so its `grpc-status` is in the head (a streamed response's
/// status is in the trailers: tower-http's `GrpcErrorsAsFailures` reads those).
fn grpc_failures<E>(result: Result<&http::Response<Body>, &E>) -> Outcome {
    let Ok(response) = result else {
        return Outcome::Failure;
    };
    let code = response
        .headers()
        .get("grpc-status")
        .map(|code| Code::from_bytes(code.as_bytes()));
    match code {
        Some(Code::Unavailable | Code::Internal | Code::Unknown | Code::DeadlineExceeded) => {
            Outcome::Failure
        }
        _ => Outcome::Success,
    }
}

fn config(name: &'static str) -> Config {
    Config::builder()
        .name(name)
        .consecutive_failures(2)
        .open_duration(OPEN_FOR)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

/// A gRPC server running on 127.0.0.1 until stopped.
type Running = crate::support::server::Running<tonic::transport::Error>;

/// Spawns `serve(incoming, shutdown signal)` on an ephemeral port.
async fn start<F>(serve: impl FnOnce(TcpIncoming, Signal) -> F) -> Running
where
    F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    Running::start(|listener, signal| serve(TcpIncoming::from(listener), signal)).await
}

/// A client channel to `server`.
async fn channel(server: &Running) -> Channel {
    Endpoint::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Stops `server`, which must shut down gracefully.
async fn stop(server: Running) {
    assert!(
        server.stop().await,
        "the gRPC server did not shut down within 5 s"
    );
}

/// A plain server: no breaker.
async fn plain_server(echo: Echo) -> Running {
    start(|incoming, signal| Server::builder().serve_with_incoming_shutdown(echo, incoming, signal))
        .await
}

/// One unary call, as a generated client makes it: readiness errors and call errors
/// both end as the caller's `Status`.
async fn ping<T>(grpc: &mut tonic::client::Grpc<T>, n: u32) -> Result<u32, Status>
where
    T: GrpcService<Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<BoxError>,
{
    grpc.ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let response = grpc
        .unary(
            tonic::Request::new(Ping { n }),
            PathAndQuery::from_static(PATH),
            ProstCodec::<Ping, Ping>::default(),
        )
        .await?;
    Ok(response.into_inner().n)
}

/// The pushback a status carries, in milliseconds.
fn pushback(status: &Status) -> Option<u64> {
    let value = status.metadata().get(RETRY_PUSHBACK_MS)?;
    Some(value.to_str().unwrap().parse().unwrap())
}

/// Asserts a rejection as the caller sees it and returns its pushback: `UNAVAILABLE`,
/// the fixed message (no breaker name, no duration).
fn assert_rejected(status: &Status, breaker: &str) -> Option<u64> {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), REJECTED);
    assert!(!status.message().contains(breaker));
    pushback(status)
}

/// Asserts the server's own `UNAVAILABLE`, passed through unchanged.
fn assert_backend_sick(status: &Status) {
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "backend sick");
    assert_eq!(pushback(status), None);
    assert!(CircuitOpen::find(status).is_none());
}

#[tokio::test]
async fn client_side_a_tripped_breaker_rejects_with_unavailable_and_pushback() {
    let echo = Echo::down();
    let server = plain_server(echo.clone()).await;
    let layer = CircuitBreakerLayer::new(config("echo-client"));
    let breaker = layer.breaker().clone();
    let channel = ServiceBuilder::new()
        .layer(
            layer
                .classify(grpc_failures::<tonic::transport::Error>)
                .convert_errors(IntoStatus),
        )
        .service(channel(&server).await);
    let mut grpc = tonic::client::Grpc::new(channel);

    for _ in 0..2 {
        assert_backend_sick(&ping(&mut grpc, 1).await.unwrap_err());
    }
    assert_eq!(breaker.state(), State::Open);

    let rejected = ping(&mut grpc, 1).await.unwrap_err();
    let pushback = assert_rejected(&rejected, "echo-client").expect("the pushback");
    assert!(
        0 < pushback && pushback <= OPEN_FOR.as_millis() as u64,
        "pushback {pushback} ms"
    );
    let open = CircuitOpen::find(&rejected).expect("the rejection is the status' source");
    assert_eq!(open.state, State::Open);
    assert_eq!(echo.hits(), 2, "the rejected call never left the client");

    // Waiting the pushback is enough: the next call is the probe, and it closes the
    // breaker.
    echo.recover();
    let_time_pass(Duration::from_millis(pushback)).await;
    assert_eq!(ping(&mut grpc, 7).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(echo.hits(), 3);

    drop(grpc);
    stop(server).await;
}

#[tokio::test]
async fn client_side_a_forced_open_breaker_rejects_with_unavailable_without_pushback() {
    let echo = Echo::default();
    let server = plain_server(echo.clone()).await;
    let layer = CircuitBreakerLayer::new(config("echo-client"));
    let breaker = layer.breaker().clone();
    let channel = ServiceBuilder::new()
        .layer(layer.convert_errors(IntoStatus))
        .service(channel(&server).await);
    let mut grpc = tonic::client::Grpc::new(channel);
    assert_eq!(ping(&mut grpc, 3).await.unwrap(), 3);

    breaker.force_open();
    let rejected = ping(&mut grpc, 3).await.unwrap_err();
    assert_eq!(
        assert_rejected(&rejected, "echo-client"),
        None,
        "forced open: no estimate"
    );
    assert_eq!(
        CircuitOpen::find(&rejected).map(|open| open.state),
        Some(State::ForcedOpen)
    );
    assert_eq!(echo.hits(), 1);

    drop(grpc);
    stop(server).await;
}

/// tower-http's classifier (which also reads a streamed response's trailers) wrapped in
/// the converter: `ConvertErrorLayer::new(classified, IntoStatus)`.
#[cfg(feature = "tower-http")]
#[tokio::test]
async fn client_side_a_classified_breaker_converts_with_the_same_converter() {
    use tower_circuit_breaker::convert_error::ConvertErrorLayer;
    use tower_circuit_breaker::tower_http::ClassifiedBreakerLayer;
    use tower_circuit_breaker::CircuitBreaker;
    use tower_http::classify::GrpcErrorsAsFailures;

    let echo = Echo::down();
    let server = plain_server(echo.clone()).await;
    let breaker = CircuitBreaker::new(config("echo-client"));
    let classified =
        ClassifiedBreakerLayer::new(breaker.clone(), GrpcErrorsAsFailures::make_classifier());
    let channel = ServiceBuilder::new()
        .layer(ConvertErrorLayer::new(classified, IntoStatus))
        .service(channel(&server).await);
    let mut grpc = tonic::client::Grpc::new(channel);

    for _ in 0..2 {
        assert_backend_sick(&ping(&mut grpc, 1).await.unwrap_err());
    }
    assert_eq!(breaker.state(), State::Open);
    let rejected = ping(&mut grpc, 1).await.unwrap_err();
    let pushback = assert_rejected(&rejected, "echo-client").expect("the pushback");
    assert!(pushback <= OPEN_FOR.as_millis() as u64);
    assert_eq!(echo.hits(), 2);

    drop(grpc);
    stop(server).await;
}

#[tokio::test]
async fn server_side_a_tripped_breaker_answers_unavailable_with_pushback() {
    let echo = Echo::down();
    let layer = CircuitBreakerLayer::new(config("echo-server"));
    let breaker = layer.breaker().clone();
    let layer = layer
        .classify(grpc_failures::<Infallible>)
        .convert_errors(IntoStatus);
    let server = start({
        let echo = echo.clone();
        move |incoming, signal| {
            Server::builder()
                .layer(layer)
                .serve_with_incoming_shutdown(echo, incoming, signal)
        }
    })
    .await;
    // A plain tonic client: no breaker of its own.
    let mut grpc = tonic::client::Grpc::new(channel(&server).await);

    for _ in 0..2 {
        assert_backend_sick(&ping(&mut grpc, 1).await.unwrap_err());
    }
    assert_eq!(breaker.state(), State::Open);

    let rejected = ping(&mut grpc, 1).await.unwrap_err();
    let pushback = assert_rejected(&rejected, "echo-server").expect("the pushback");
    assert!(
        0 < pushback && pushback <= OPEN_FOR.as_millis() as u64,
        "pushback {pushback} ms"
    );
    assert!(
        CircuitOpen::find(&rejected).is_none(),
        "only code, message and metadata cross the wire"
    );
    assert_eq!(
        echo.hits(),
        2,
        "the rejected call never reached the service"
    );
    assert_eq!(breaker.metrics().rejected, 1);

    echo.recover();
    let_time_pass(Duration::from_millis(pushback)).await;
    assert_eq!(ping(&mut grpc, 7).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);

    drop(grpc);
    stop(server).await;
}

#[tokio::test]
async fn server_side_a_forced_open_breaker_answers_unavailable_without_pushback() {
    let echo = Echo::default();
    let layer = CircuitBreakerLayer::new(config("echo-server"));
    let breaker = layer.breaker().clone();
    breaker.force_open();
    let layer = layer.convert_errors(IntoStatus);
    let server = start({
        let echo = echo.clone();
        move |incoming, signal| {
            Server::builder()
                .layer(layer)
                .serve_with_incoming_shutdown(echo, incoming, signal)
        }
    })
    .await;
    let mut grpc = tonic::client::Grpc::new(channel(&server).await);

    let rejected = ping(&mut grpc, 1).await.unwrap_err();
    assert_eq!(assert_rejected(&rejected, "echo-server"), None);
    assert_eq!(echo.hits(), 0);

    breaker.force_closed();
    assert_eq!(ping(&mut grpc, 5).await.unwrap(), 5);

    drop(grpc);
    stop(server).await;
}

#[test]
fn the_pushback_is_whole_milliseconds_rounded_up_and_fits_32_bits() {
    let pushback_for = |after: Duration| {
        let open = CircuitOpen {
            name: "db".into(),
            state: State::HalfOpen,
            retry_after: Some(after),
        };
        pushback(&status(&open)).unwrap()
    };
    assert_eq!(pushback_for(Duration::ZERO), 0);
    assert_eq!(pushback_for(Duration::from_nanos(1)), 1);
    assert_eq!(pushback_for(Duration::from_millis(1_500)), 1_500);
    assert_eq!(pushback_for(Duration::from_nanos(1_500_000_001)), 1_501);
    assert_eq!(pushback_for(Duration::MAX), i32::MAX as u64);
}
