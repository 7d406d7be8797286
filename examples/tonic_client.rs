//! A tonic gRPC client whose channel is guarded by a breaker that reads gRPC statuses.
//!
//! A local tonic server on 127.0.0.1:0 serves a unary `Stock/Lookup` method (messages
//! are hand-written prost types with `ProstCodec`, so no `protoc` is needed). The
//! client's `Channel` is wrapped in a [`ClassifiedBreakerLayer`] with tower-http's
//! `GrpcErrorsAsFailures`, which finds `grpc-status` in the response head or, for a
//! normal response, in its trailers. `NOT_FOUND` is declared a success (the item is
//! missing, the server is fine); `UNAVAILABLE` counts as a failure. After the breaker
//! opens, calls fail fast without reaching the server. [`IntoStatus`] (feature
//! `tonic`) turns each rejection into what a gRPC caller expects: `UNAVAILABLE` with
//! the breaker's retry delay as `grpc-retry-pushback-ms` metadata. The client waits
//! that long, the server has recovered, a probe closes the breaker, the server shuts
//! down and the example exits.
//!
//! ```sh
//! cargo run --example tonic_client --features tower-http,tonic
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{service_fn, Layer};
use tower_circuit_breaker::convert_error::ConvertErrorLayer;
use tower_circuit_breaker::tonic::{IntoStatus, RETRY_PUSHBACK_MS};
use tower_circuit_breaker::tower_http::ClassifiedBreakerLayer;
use tower_circuit_breaker::{CircuitBreaker, CircuitOpen, Config};
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, PartialEq, prost::Message)]
struct Lookup {
    #[prost(string, tag = "1")]
    item: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Stock {
    #[prost(uint32, tag = "1")]
    count: u32,
}

/// The server: one unary method, a hit counter and a "down" switch.
#[derive(Clone, Default)]
struct StockServer {
    down: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl NamedService for StockServer {
    const NAME: &'static str = "example.Stock";
}

impl tower::Service<http::Request<tonic::body::Body>> for StockServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let server = self.clone();
        let lookup = service_fn(move |request: tonic::Request<Lookup>| {
            server.hits.fetch_add(1, SeqCst);
            let down = server.down.load(SeqCst);
            async move {
                match request.into_inner().item.as_str() {
                    _ if down => Err(Status::unavailable("stock database is down")),
                    "teapot" => Ok(tonic::Response::new(Stock { count: 42 })),
                    other => Err(Status::not_found(format!("no such item: {other}"))),
                }
            }
        });
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Stock, Lookup>::default());
            Ok(grpc.unary(lookup, request).await)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = StockServer::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        server.clone(),
        TcpIncoming::from(listener),
        async move {
            let _ = stopped.await;
        },
    ));

    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let breaker = CircuitBreaker::new(
        Config::builder()
            .name("stock")
            .consecutive_failures(2)
            .open_duration(Duration::from_millis(200))
            .half_open_successes(1)
            .build()?,
    );
    let classifier =
        SharedClassifier::new(GrpcErrorsAsFailures::new().with_success(GrpcCode::NotFound));
    // One layer: the breaker classifying gRPC statuses, its rejections converted into
    // `UNAVAILABLE` statuses with retry pushback.
    let layer = ConvertErrorLayer::new(
        ClassifiedBreakerLayer::new(breaker.clone(), classifier),
        IntoStatus,
    );
    let grpc = tonic::client::Grpc::new(layer.layer(channel));

    // Each call drives a clone: clones share the breaker (and the HTTP/2 connection).
    let lookup = |item: &'static str| {
        let mut grpc = grpc.clone();
        async move {
            grpc.ready().await.map_err(Status::from_error)?;
            let request = tonic::Request::new(Lookup { item: item.into() });
            let path = PathAndQuery::from_static("/example.Stock/Lookup");
            grpc.unary(request, path, ProstCodec::<Lookup, Stock>::default())
                .await
        }
    };

    let report = |label: &str, result: &Result<tonic::Response<Stock>, Status>| match result {
        Ok(stock) => println!("{label:>10}: {} in stock", stock.get_ref().count),
        Err(status) => {
            println!("{label:>10}: {:?}: {}", status.code(), status.message());
            if let Some(pushback) = status.metadata().get(RETRY_PUSHBACK_MS) {
                println!("{:>10}  {RETRY_PUSHBACK_MS}: {pushback:?}", "");
            }
            // The status' source, for the caller's logs only: never sent anywhere.
            if let Some(open) = CircuitOpen::find(status) {
                println!("{:>10}  failed fast: {open}", "");
            }
        }
    };

    report("teapot", &lookup("teapot").await);
    report("unicorn", &lookup("unicorn").await); // NOT_FOUND: a success for the breaker
    println!("breaker is {}", breaker.state());

    server.down.store(true, SeqCst);
    for _ in 0..2 {
        report("down", &lookup("teapot").await);
    }
    println!("breaker is {}", breaker.state());
    let hits = server.hits.load(SeqCst);
    let mut pushback = Duration::ZERO;
    for _ in 0..2 {
        let result = lookup("teapot").await;
        report("open", &result);
        let status = result.expect_err("the breaker is open");
        assert_eq!(status.code(), Code::Unavailable);
        let millis: u64 = status
            .metadata()
            .get(RETRY_PUSHBACK_MS)
            .expect("tripped by failures: the delay is known")
            .to_str()?
            .parse()?;
        pushback = Duration::from_millis(millis);
    }
    assert_eq!(
        server.hits.load(SeqCst),
        hits,
        "rejected calls never reach the server"
    );

    // Meanwhile the server recovers; the client honours the pushback, then retries.
    server.down.store(false, SeqCst);
    println!("waiting {pushback:?} as the pushback asks");
    tokio::time::sleep(pushback).await;
    report("recovered", &lookup("teapot").await);
    println!("breaker is {}", breaker.state());

    drop(grpc);
    let _ = stop.send(());
    task.await??;
    println!("server stopped");
    Ok(())
}
