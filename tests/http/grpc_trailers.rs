//! A real tonic server on 127.0.0.1:0 streaming gRPC responses, and a tonic client
//! whose channel is guarded by a `ClassifiedBreakerLayer` with tower-http's
//! `GrpcErrorsAsFailures`: an error delivered in the trailers, after streamed messages,
//! trips the breaker; open, calls never reach the server; a probe closes it again.
//! Messages are hand-written prost types with `ProstCodec`: no `protoc` needed.
#![cfg(feature = "tower-http")]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::let_time_pass;
use crate::support::server::Running;
use futures::Stream;
use http::uri::PathAndQuery;
use tonic::server::{NamedService, ServerStreamingService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;
use tower::{Layer, Service};
use tower_circuit_breaker::tower_http::{ClassifiedBreakerLayer, ClassifiedBreakerService};
use tower_circuit_breaker::{CircuitBreaker, CircuitOpen, Config, State};
use tower_http::classify::{GrpcErrorsAsFailures, SharedClassifier};

const OPEN_FOR: Duration = Duration::from_millis(500);
const PATH: &str = "/test.Ticker/Ticks";

/// One streamed message.
#[derive(Clone, PartialEq, prost::Message)]
struct Tick {
    #[prost(uint32, tag = "1")]
    n: u32,
}

/// How the server answers the next calls.
const HEALTHY: u8 = 0;
/// Two messages, then `UNAVAILABLE` in the trailers.
const FAIL_IN_TRAILERS: u8 = 1;
/// `UNAVAILABLE` at once (a trailers-only response: the status is in the head).
const FAIL_AT_ONCE: u8 = 2;

/// The server's state: a hit counter and the "fail on command" switch.
#[derive(Debug, Clone, Default)]
struct Ticker {
    hits: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl Ticker {
    fn hits(&self) -> usize {
        self.hits.load(SeqCst)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, SeqCst);
    }
}

type TickStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

impl ServerStreamingService<Tick> for Ticker {
    type Response = Tick;
    type ResponseStream = TickStream;
    type Future = Ready<Result<tonic::Response<TickStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Tick>) -> Self::Future {
        self.hits.fetch_add(1, SeqCst);
        let first = request.into_inner().n;
        let ticks = [Ok(Tick { n: first }), Ok(Tick { n: first + 1 })];
        let stream: TickStream = match self.mode.load(SeqCst) {
            HEALTHY => Box::pin(futures::stream::iter(ticks)),
            FAIL_IN_TRAILERS => Box::pin(futures::stream::iter(
                ticks
                    .into_iter()
                    .chain([Err(Status::unavailable("backend sick"))]),
            )),
            _ => return ready(Err(Status::unavailable("backend sick"))),
        };
        ready(Ok(tonic::Response::new(stream)))
    }
}

/// The tonic server side: routes every request to the streaming method.
impl Service<http::Request<tonic::body::Body>> for Ticker {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let ticker = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Tick, Tick>::default());
            Ok(grpc.server_streaming(ticker, request).await)
        })
    }
}

impl NamedService for Ticker {
    const NAME: &'static str = "test.Ticker";
}

/// A server routing to the ticker, and a client channel to it.
struct TestServer {
    channel: Channel,
    server: Running<tonic::transport::Error>,
}

impl TestServer {
    async fn start(ticker: Ticker) -> TestServer {
        let server = Running::start(|listener, signal| {
            Server::builder().serve_with_incoming_shutdown(
                ticker,
                TcpIncoming::from(listener),
                signal,
            )
        })
        .await;
        let channel = Endpoint::from_shared(server.url(""))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestServer { channel, server }
    }

    async fn stop(self) {
        drop(self.channel);
        assert!(
            self.server.stop().await,
            "the gRPC server did not shut down within 5 s"
        );
    }
}

type Guarded = ClassifiedBreakerService<Channel, SharedClassifier<GrpcErrorsAsFailures>>;

fn guard(channel: Channel) -> (tonic::client::Grpc<Guarded>, CircuitBreaker) {
    let breaker = CircuitBreaker::new(
        Config::builder()
            .name("ticker")
            .consecutive_failures(2)
            .open_duration(OPEN_FOR)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    );
    let layer =
        ClassifiedBreakerLayer::new(breaker.clone(), GrpcErrorsAsFailures::make_classifier());
    (tonic::client::Grpc::new(layer.layer(channel)), breaker)
}

async fn ticks(grpc: &mut tonic::client::Grpc<Guarded>) -> Result<Streaming<Tick>, Status> {
    grpc.ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let response = grpc
        .server_streaming(
            tonic::Request::new(Tick { n: 1 }),
            PathAndQuery::from_static(PATH),
            ProstCodec::<Tick, Tick>::default(),
        )
        .await?;
    Ok(response.into_inner())
}

/// Reads a stream to its end: the messages, or the status it ended with.
async fn drain(stream: &mut Streaming<Tick>) -> Result<Vec<u32>, Status> {
    let mut seen = Vec::new();
    while let Some(tick) = stream.message().await? {
        seen.push(tick.n);
    }
    Ok(seen)
}

#[tokio::test]
async fn an_error_in_the_trailers_trips_the_breaker_and_a_probe_closes_it() {
    let ticker = Ticker::default();
    let server = TestServer::start(ticker.clone()).await;
    let (mut grpc, breaker) = guard(server.channel.clone());

    for _ in 0..2 {
        let mut stream = ticks(&mut grpc).await.unwrap();
        assert_eq!(drain(&mut stream).await.unwrap(), [1, 2]);
    }
    assert_eq!(breaker.metrics().successes, 2);

    ticker.set(FAIL_IN_TRAILERS);
    for failures in 1..=2u64 {
        let mut stream = ticks(&mut grpc).await.unwrap(); // 200 OK: the head looks fine
        assert_eq!(stream.message().await.unwrap().unwrap().n, 1);
        assert_eq!(
            breaker.metrics().failures,
            failures - 1,
            "nothing is recorded before the end of stream"
        );
        let status = drain(&mut stream).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(breaker.metrics().failures, failures);
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(ticker.hits(), 4);

    // Open: the call fails fast on the client, the server sees nothing.
    for _ in 0..3 {
        let status = ticks(&mut grpc).await.unwrap_err();
        let open = CircuitOpen::find(&status).expect("the rejection is in the status' source");
        assert_eq!(open.state, State::Open);
    }
    assert_eq!(ticker.hits(), 4, "rejections never reach the server");
    assert_eq!(breaker.metrics().rejected, 3);

    ticker.set(HEALTHY);
    let_time_pass(OPEN_FOR).await;
    let mut stream = ticks(&mut grpc).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "the probe is still streaming"
    );
    assert_eq!(drain(&mut stream).await.unwrap(), [1, 2]);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(ticker.hits(), 5);

    drop(grpc);
    server.stop().await;
}

#[tokio::test]
async fn a_trailers_only_error_is_classified_from_the_head() {
    let ticker = Ticker::default();
    ticker.set(FAIL_AT_ONCE);
    let server = TestServer::start(ticker.clone()).await;
    let (mut grpc, breaker) = guard(server.channel.clone());
    for _ in 0..2 {
        let status = ticks(&mut grpc).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failures, 2);

    drop(grpc);
    server.stop().await;
}

#[tokio::test]
async fn a_stream_dropped_before_its_end_is_ignored_and_frees_the_probe() {
    let ticker = Ticker::default();
    ticker.set(FAIL_AT_ONCE);
    let server = TestServer::start(ticker.clone()).await;
    let (mut grpc, breaker) = guard(server.channel.clone());
    for _ in 0..2 {
        ticks(&mut grpc).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);

    ticker.set(HEALTHY);
    let_time_pass(OPEN_FOR).await;
    let mut probe = ticks(&mut grpc).await.unwrap();
    assert_eq!(probe.message().await.unwrap().unwrap().n, 1);
    drop(probe); // the reader gives up mid-stream
    assert_eq!(breaker.metrics().ignored, 1);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "an abandoned stream decides nothing"
    );

    // The permit came back: the next probe is admitted and closes the breaker.
    let mut stream = ticks(&mut grpc).await.unwrap();
    assert_eq!(drain(&mut stream).await.unwrap(), [1, 2]);
    assert_eq!(breaker.state(), State::Closed);

    drop(grpc);
    server.stop().await;
}
