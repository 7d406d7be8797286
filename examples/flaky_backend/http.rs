//! The demo's HTTP side: the backend served with axum on 127.0.0.1, and a hyper-util
//! client wrapped as a Tower service.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{service_fn, BoxError};

use crate::driver::{self, Backend, Client, Scenario, Schedule, ServerError};
use crate::report::Report;

/// The pooled HTTP client the stacks share.
pub type Http = HttpClient<HttpConnector, Empty<Bytes>>;

/// Serves `backend` over HTTP on 127.0.0.1 until `shutdown` resolves.
pub async fn serve(
    backend: Backend,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let mut app = Router::new();
    for scenario in Scenario::ALL {
        let backend = backend.clone();
        app = app.route(
            scenario.path(),
            get(move || async move {
                let answer = backend.answer(scenario);
                tokio::time::sleep(answer.delay).await;
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = shutdown.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("backend server failed: {e}");
        }
    });
    Ok((addr, server))
}

/// A Tower service that GETs `uri` and fails on a 5xx answer.
pub fn http_client(client: Http, uri: Uri) -> Client {
    BoxCloneService::new(service_fn(move |()| {
        let response = client.get(uri.clone());
        async move {
            let response = response.await?;
            let status = response.status();
            // Read the (empty) body so the connection goes back to the pool.
            response.into_body().collect().await?;
            if status.is_server_error() {
                Err(BoxError::from(ServerError(status.as_u16())))
            } else {
                Ok(())
            }
        }
    }))
}

/// Runs the experiment against a real HTTP backend on 127.0.0.1 (a free port, passed to
/// `on_start` once the server listens), then shuts the server down.
pub async fn run(
    schedule: Schedule,
    rps: u32,
    seed: u64,
    on_start: impl FnOnce(SocketAddr),
) -> std::io::Result<Report> {
    // Start a little ahead so the server is up before the first request.
    let start = Instant::now() + Duration::from_millis(100);
    let backend = Backend::new(schedule, start, seed);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = serve(backend.clone(), stopped).await?;
    on_start(addr);

    let http: Http = HttpClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http();
    let report = driver::run(&backend, start, rps, seed, |scenario| {
        let uri: Uri = format!("http://{addr}{}", scenario.path())
            .parse()
            .expect("valid backend uri");
        http_client(http.clone(), uri)
    })
    .await;

    let _ = stop.send(());
    let _ = server.await;
    Ok(report)
}
