//! Per-endpoint breakers behind a power-of-two-choices balancer, against four real
//! HTTP endpoints.
//!
//! Four axum servers on 127.0.0.1 play the replicas of one service. A sick replica
//! answers `500` after 20 ms; a healthy one answers `200` at once. Eight callers send
//! requests through `tower::balance::p2c::Balance` (one hyper client per replica) for
//! three phases: one replica sick, then all four, then all healthy again. The same load
//! runs twice, without breakers and with an
//! [`EndpointBreakers`](tower_circuit_breaker::balance::EndpointBreakers) group (one
//! breaker per replica, 5 failures in a row, open 500 ms, the group's
//! [`FailFast`](tower_circuit_breaker::balance::FailFast) in front of the balancer),
//! and the example prints what the callers saw in each phase.
//!
//! ```sh
//! cargo run --release --example balanced --features http
//! cargo run --example balanced --features http -- --phase-ms 400   # shorter phases
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::balance::EndpointBreakers;
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitOpen, Config};

const REPLICAS: usize = 4;
const CALLERS: usize = 8;
const SICK_DELAY: Duration = Duration::from_millis(20);
const PHASES: [&str; 3] = ["one replica sick", "all replicas sick", "all healed"];

/// A replica: sick or not, switched by the example.
#[derive(Default)]
struct Replica {
    sick: AtomicBool,
}

/// What the callers saw in one phase.
#[derive(Default, Clone)]
struct Seen {
    ok: usize,
    /// Calls that reached a replica and failed (a `500`, or a transport error).
    failed: usize,
    /// Calls rejected at once because every replica was out.
    fast_failed: usize,
    latencies: Vec<Duration>,
}

impl Seen {
    fn calls(&self) -> usize {
        self.ok + self.failed + self.fast_failed
    }

    fn latency(&self, quantile: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
}

#[tokio::main]
async fn main() {
    let outcome = match phase_length(std::env::args().skip(1)) {
        Ok(phase) => compare(phase).await,
        Err(error) => Err(error),
    };
    if let Err(error) = outcome {
        eprintln!("balanced: {error}");
        std::process::exit(2);
    }
}

/// Runs the load without and with breakers and prints the table.
async fn compare(phase: Duration) -> Result<(), BoxError> {
    let replicas: Vec<Arc<Replica>> = (0..REPLICAS).map(|_| Arc::default()).collect();
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    for replica in &replicas {
        let (url, server) = serve(Arc::clone(replica)).await?;
        urls.push(url);
        servers.push(server);
    }
    println!(
        "{REPLICAS} replicas on 127.0.0.1, {CALLERS} callers, phases of {} ms",
        phase.as_millis()
    );

    let (without, _) = run(&replicas, &urls, phase, None).await?;
    let group = EndpointBreakers::new(
        Config::builder()
            .name("replicas")
            .consecutive_failures(5)
            .open_duration(Duration::from_millis(500))
            .build()?,
    )?;
    let (with, with_end) = run(&replicas, &urls, phase, Some(&group)).await?;

    println!();
    println!(
        "{:<18} | {:<15} | {:>6} | {:>6} | {:>11} | {:>8} | {:>8}",
        "phase", "breakers", "calls", "failed", "fast-failed", "p50", "p99"
    );
    for (index, name) in PHASES.iter().enumerate() {
        for (label, seen) in [("without", &without[index]), ("per replica", &with[index])] {
            println!(
                "{:<18} | {:<15} | {:>6} | {:>6} | {:>11} | {:>8.1?} | {:>8.1?}",
                name,
                label,
                seen.calls(),
                seen.failed,
                seen.fast_failed,
                seen.latency(0.5),
                seen.latency(0.99),
            );
        }
    }
    println!();
    println!(
        "breakers: {} trips refused by the ejection cap, {} calls failed fast",
        group.capped_trips(),
        group.rejected(),
    );
    println!("{with_end}");
    for server in servers {
        server.abort();
    }
    Ok(())
}

/// `--phase-ms N`: the length of each phase (default 2 000 ms).
fn phase_length(mut args: impl Iterator<Item = String>) -> Result<Duration, BoxError> {
    let mut phase = Duration::from_millis(2_000);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--phase-ms" => {
                let value = args
                    .next()
                    .ok_or("--phase-ms needs a number of milliseconds")?;
                let millis: u64 = value
                    .parse()
                    .map_err(|_| format!("--phase-ms {value:?}: not a number of milliseconds"))?;
                if millis == 0 {
                    return Err("--phase-ms 0: a phase must last at least 1 ms".into());
                }
                phase = Duration::from_millis(millis);
            }
            other => {
                return Err(format!("unknown argument {other:?} (expected --phase-ms N)").into())
            }
        }
    }
    Ok(phase)
}

/// A replica's server on an ephemeral port: its URL and its task.
async fn serve(
    replica: Arc<Replica>,
) -> Result<(hyper::Uri, tokio::task::JoinHandle<()>), BoxError> {
    let app = Router::new().route(
        "/",
        get(move || {
            let replica = Arc::clone(&replica);
            async move {
                if replica.sick.load(SeqCst) {
                    tokio::time::sleep(SICK_DELAY).await;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?).parse()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, server))
}

/// One replica as a `Service<()>`: a hyper client sending `GET /` to `url`.
fn replica_client(
    url: hyper::Uri,
) -> impl Service<
    (),
    Response = hyper::Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future: Send,
> + Clone
       + Send {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    ServiceBuilder::new()
        .map_request(move |()| {
            hyper::Request::get(url.clone())
                .body(Empty::new())
                .expect("a valid request")
        })
        .service(client)
}

/// Runs the three phases with `CALLERS` callers through a balancer over `urls`, with
/// the group's breakers if any; returns what the callers saw in each phase and, with
/// breakers, the replicas' health at the end (while the balancer still holds them).
async fn run(
    replicas: &[Arc<Replica>],
    urls: &[hyper::Uri],
    phase: Duration,
    group: Option<&EndpointBreakers<usize>>,
) -> Result<(Vec<Seen>, String), BoxError> {
    for replica in replicas {
        replica.sick.store(false, SeqCst);
    }
    let endpoints = ServiceList::new(urls.iter().cloned().map(replica_client).collect::<Vec<_>>());
    let client = match group {
        None => Buffer::new(
            Balance::new(PendingRequestsDiscover::new(
                endpoints,
                CompleteOnResponse::default(),
            ))
            .boxed(),
            64,
        ),
        Some(group) => Buffer::new(
            group
                .fail_fast(Balance::new(PendingRequestsDiscover::new(
                    group.discover_classified(endpoints, HttpClassifier::new()),
                    CompleteOnResponse::default(),
                )))
                .boxed(),
            64,
        ),
    };
    let current = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(vec![Seen::default(); PHASES.len()]));
    let end = Instant::now() + phase * PHASES.len() as u32;
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (client, current, seen) = (client.clone(), Arc::clone(&current), Arc::clone(&seen));
            async move {
                while Instant::now() < end {
                    let in_phase = current.load(SeqCst);
                    let started = Instant::now();
                    let result = client.clone().oneshot(()).await;
                    let took = started.elapsed();
                    // A fast failure says how long every replica stays out; a caller
                    // backs off for that long (at most 5 ms here, to keep measuring).
                    let mut back_off = None;
                    {
                        let mut seen = seen.lock().unwrap();
                        let seen = &mut seen[in_phase];
                        match result {
                            Ok(response) if !response.status().is_server_error() => seen.ok += 1,
                            Ok(_) => seen.failed += 1,
                            Err(error) => match CircuitOpen::find(&*error) {
                                Some(open) => {
                                    seen.fast_failed += 1;
                                    back_off = Some(
                                        open.retry_after
                                            .unwrap_or(phase)
                                            .min(Duration::from_millis(5)),
                                    );
                                }
                                None => seen.failed += 1,
                            },
                        }
                        seen.latencies.push(took);
                    }
                    if let Some(wait) = back_off {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        })
        .collect();
    // A call counts in the phase it started in; the replicas change first, so a call
    // started in a phase meets that phase's replicas (only a call already in flight
    // at a boundary, at most one per caller, meets the next phase's).
    let phases = async {
        replicas[0].sick.store(true, SeqCst);
        tokio::time::sleep(phase).await;
        for replica in replicas {
            replica.sick.store(true, SeqCst);
        }
        current.store(1, SeqCst);
        tokio::time::sleep(phase).await;
        for replica in replicas {
            replica.sick.store(false, SeqCst);
        }
        current.store(2, SeqCst);
    };
    // The callers run on this task (the servers on the runtime's other threads).
    futures::join!(phases, futures::future::join_all(callers));
    let seen = seen.lock().unwrap().clone();
    let end = match group {
        None => String::new(),
        Some(group) => {
            let health: Vec<String> = group
                .health()
                .breakers
                .iter()
                .map(|b| format!("{} {:?}", b.name, b.health))
                .collect();
            format!(
                "at the end: {} replicas in the group, {} out of rotation; {}",
                group.len(),
                group.ejected(),
                health.join(", ")
            )
        }
    };
    drop(client);
    Ok((seen, end))
}
