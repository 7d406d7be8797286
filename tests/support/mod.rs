//! What the test binaries share, each including it with
//! `#[path = "../support/mod.rs"] mod support;`: a controllable inner service and
//! small helpers (this file), real servers on 127.0.0.1 (`server`), the examples
//! run as processes (`example`), and a capture of the crate's log messages
//! (`log_capture`).
//!
//! `counting_allocator.rs` beside it is deliberately not a module of this tree: it
//! installs itself as the global allocator, so only the binaries that count
//! allocations (tests/rules, tests/retry) include it.
#![allow(dead_code)]

pub mod example;
pub mod log_capture;
pub mod server;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitBreakerService, Config, Error};

/// How the backend answers its next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Succeed,
    Fail,
    /// Never answers.
    Hang,
    /// Answers `Ok` after a delay.
    Slow(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError(pub &'static str);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BackendError {}

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicUsize,
    ready_polls: AtomicUsize,
}

/// A backend whose behaviour the test switches, counting calls and readiness polls.
#[derive(Debug, Clone)]
pub struct Backend {
    shared: Arc<Shared>,
}

impl Backend {
    pub fn new(mode: Mode) -> Self {
        Backend {
            shared: Arc::new(Shared {
                mode: Mutex::new(mode),
                hits: AtomicUsize::new(0),
                ready_polls: AtomicUsize::new(0),
            }),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Calls that reached the backend.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(SeqCst)
    }

    /// Times the backend's `poll_ready` was called.
    pub fn ready_polls(&self) -> usize {
        self.shared.ready_polls.load(SeqCst)
    }
}

pub type BackendFuture = Pin<Box<dyn Future<Output = Result<u32, BackendError>> + Send>>;

impl Service<u32> for Backend {
    type Response = u32;
    type Error = BackendError;
    type Future = BackendFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.shared.ready_polls.fetch_add(1, SeqCst);
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u32) -> Self::Future {
        self.shared.hits.fetch_add(1, SeqCst);
        let mode = *self.shared.mode.lock().unwrap();
        Box::pin(async move {
            match mode {
                Mode::Succeed => Ok(request),
                Mode::Fail => Err(BackendError("backend failed")),
                Mode::Hang => std::future::pending().await,
                Mode::Slow(delay) => {
                    tokio::time::sleep(delay).await;
                    Ok(request)
                }
            }
        })
    }
}

pub type Guarded = CircuitBreakerService<Backend>;

/// A backend behind a breaker built from `config`.
pub fn guarded(config: Config, mode: Mode) -> (Guarded, Backend) {
    let backend = Backend::new(mode);
    let layer = CircuitBreakerLayer::new(config);
    (tower::Layer::layer(&layer, backend.clone()), backend)
}

/// One call through `svc`: ready, call, await.
pub async fn call(svc: &mut Guarded) -> Result<u32, Error<BackendError>> {
    svc.ready().await?.call(7).await
}

/// Makes `n` calls, expecting each to reach the backend (not rejected).
pub async fn calls(svc: &mut Guarded, n: usize) {
    for _ in 0..n {
        if let Err(Error::Open(open)) = call(svc).await {
            panic!("unexpected rejection: {open}");
        }
    }
}

/// Whether a result is a fast rejection by the breaker.
pub fn is_rejection<T: fmt::Debug>(result: &Result<T, Error<BackendError>>) -> bool {
    matches!(result, Err(Error::Open(_)))
}

/// A config builder with tidy defaults for tests (no jitter, named).
pub fn builder() -> tower_circuit_breaker::ConfigBuilder {
    Config::builder().name("test")
}

/// Lets `by` pass on Tokio's clock at once, in a test that talks to a real server and
/// so runs in real time: the clock is paused only while it is advanced, so no socket
/// ever waits on a paused clock. The breaker reads Tokio's clock and sees the time go
/// by; the test does not sleep. Needs a current-thread runtime (`#[tokio::test]`).
pub async fn let_time_pass(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// One `GET path` to a server on `addr` over a fresh blocking connection (bounded by a
/// read timeout); returns the status line and the body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}
