//! Why you want a circuit breaker, in one command:
//!
//! ```sh
//! cargo run --release --example flaky_backend
//! ```
//!
//! Starts an HTTP backend on 127.0.0.1 (a random free port) that goes through four
//! phases: healthy, 30% errors, a full outage where every call hangs 500 ms, and recovery.
//! The same open-loop load is driven, at the same time, through three client stacks:
//!
//! - (a) no protection;
//! - (b) a 100 ms timeout only;
//! - (c) the full stack `Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed(
//!   backend ))))`.
//!
//! For each phase it prints requests, success / fast-fail / timeout / error rates, mean
//! and p99 latency, the calls that reached the backend, and the breaker's transitions.
//!
//! Flags: `--duration SECS` (default 24, at most 55), `--rps N` (default 100),
//! `--seed N` (default 1), `--svg PATH` (write a timeline chart).

#[path = "flaky_backend/driver.rs"]
mod driver;
#[path = "flaky_backend/svg.rs"]
mod svg;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{service_fn, BoxError};

use driver::{Backend, Client, Scenario, Schedule, ServerError};

/// The demo's settings, from the command line.
#[derive(Debug)]
struct Args {
    duration: Duration,
    rps: u32,
    seed: u64,
    svg: Option<String>,
}

const USAGE: &str = "usage: flaky_backend [--duration SECS] [--rps N] [--seed N] [--svg PATH]
  --duration SECS  length of the run, 4 to 55 seconds (default 24)
  --rps N          requests per second through each stack, 1 to 2000 (default 100)
  --seed N         seed of the backend's errors and the retry jitter (default 1)
  --svg PATH       also write a timeline chart (latency and breaker state) as SVG";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(24),
        rps: 100,
        seed: 1,
        svg: None,
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        let bad = |rule: &str| format!("invalid `{flag}` = {value:?}: {rule}");
        match flag.as_str() {
            "--duration" => {
                let secs: f64 = value.parse().map_err(|_| bad("not a number"))?;
                if !(4.0..=55.0).contains(&secs) {
                    return Err(bad("must be between 4 and 55 seconds"));
                }
                parsed.duration = Duration::from_secs_f64(secs);
            }
            "--rps" => {
                parsed.rps = value.parse().map_err(|_| bad("not a whole number"))?;
                if !(1..=2000).contains(&parsed.rps) {
                    return Err(bad("must be between 1 and 2000"));
                }
            }
            "--seed" => parsed.seed = value.parse().map_err(|_| bad("not a whole number"))?,
            "--svg" => parsed.svg = Some(value),
            _ => return Err(format!("unknown flag `{flag}`")),
        }
    }
    Ok(parsed)
}

/// Serves `backend` over HTTP on 127.0.0.1 until `shutdown` resolves.
async fn serve(
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
fn http_client(
    client: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    uri: Uri,
) -> Client {
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };

    let schedule = Schedule::new(args.duration);
    // Start a little ahead so the server is up before the first request.
    let start = Instant::now() + Duration::from_millis(100);
    let backend = Backend::new(schedule, start, args.seed);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = match serve(backend.clone(), stopped).await {
        Ok(served) => served,
        Err(e) => {
            eprintln!("error: cannot start the backend on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "flaky backend on http://{addr}; phases of {:.1} s: healthy -> 30% errors -> outage (500 ms hangs) -> recovery",
        schedule.total().as_secs_f64() / 4.0
    );
    println!("running for {:.1} s ...\n", schedule.total().as_secs_f64());

    let http = HttpClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http::<Empty<Bytes>>();
    let report = driver::run(&backend, start, args.rps, args.seed, |scenario| {
        let uri: Uri = format!("http://{addr}{}", scenario.path())
            .parse()
            .expect("valid backend uri");
        http_client(http.clone(), uri)
    })
    .await;

    let _ = stop.send(());
    let _ = server.await;

    print!("{}", report.render());
    if let Some(path) = &args.svg {
        match std::fs::write(path, svg::render(&report)) {
            Ok(()) => println!("\ntimeline chart written to {path}"),
            Err(e) => {
                eprintln!("error: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
