//! HTTP and gRPC (features `http`, `reqwest`, `tower-http`, `tonic`): status
//! classification and the `503` mapping, a real axum server and a real reqwest client
//! on 127.0.0.1, per-endpoint breakers behind p2c over four real servers, the outcome
//! recorded by a classified response body, and a real tonic
//! server and client (gRPC over HTTP/2): errors in trailers trip the breaker, a
//! rejection reaches the caller as `UNAVAILABLE` with retry pushback.
//!
//! `cargo test --all-features --test http`

#[path = "../support/mod.rs"]
mod support;

mod axum_server;
mod balanced;
mod classified_body;
mod classifier;
mod grpc_trailers;
mod grpc_unavailable;
mod reqwest_client;
