//! Feature `http`: per-endpoint breakers (`tower_circuit_breaker::balance`) behind
//! `tower::balance::p2c`, against four real axum servers on 127.0.0.1 reached by real
//! hyper clients, through the three phases of `examples/balanced.rs`: one endpoint
//! sick, every endpoint sick, all healed. Real sockets in real time; open durations
//! pass on Tokio's clock (`let_time_pass`), so no test sleeps.
#![cfg(feature = "http")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::balance::EndpointBreakers;
use tower_circuit_breaker::http::HttpClassifier;
use tower_circuit_breaker::{CircuitOpen, Config, State};

use crate::support::let_time_pass;
use crate::support::server::{serve_axum, Running};

const ENDPOINTS: usize = 4;
const TRIP_AFTER: u32 = 3;
const OPEN_FOR: Duration = Duration::from_secs(30);
const CALLS: usize = 100;

/// One endpoint: a real server that answers `500` while sick, and counts its hits.
struct Endpoint {
    server: Running<std::io::Error>,
    state: Arc<Health>,
}

#[derive(Default)]
struct Health {
    sick: AtomicBool,
    hits: AtomicUsize,
}

async fn answer(AxumState(health): AxumState<Arc<Health>>) -> StatusCode {
    health.hits.fetch_add(1, SeqCst);
    if health.sick.load(SeqCst) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn endpoints() -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for _ in 0..ENDPOINTS {
        let state = Arc::new(Health::default());
        let app = Router::new()
            .route("/", get(answer))
            .with_state(Arc::clone(&state));
        endpoints.push(Endpoint {
            server: serve_axum(app).await,
            state,
        });
    }
    endpoints
}

fn hits(endpoints: &[Endpoint]) -> Vec<usize> {
    endpoints
        .iter()
        .map(|e| e.state.hits.load(SeqCst))
        .collect()
}

fn set_sick(endpoints: &[Endpoint], sick: bool) {
    for endpoint in endpoints {
        endpoint.state.sick.store(sick, SeqCst);
    }
}

/// A real hyper client sending `GET /` to one endpoint.
fn client_for(
    endpoint: &Endpoint,
) -> impl Service<
    (),
    Response = hyper::Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future: Send,
> + Send {
    let url: hyper::Uri = endpoint.server.url("/").parse().unwrap();
    ServiceBuilder::new()
        .map_request(move |()| {
            hyper::Request::get(url.clone())
                .body(Empty::<Bytes>::new())
                .unwrap()
        })
        .service(Client::builder(TokioExecutor::new()).build_http())
}

/// What `CALLS` sequential calls saw: server errors, fast rejections, successes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    failed: usize,
    fast_failed: usize,
    ok: usize,
}

async fn make_calls<S>(client: &mut S) -> (Seen, Option<CircuitOpen>)
where
    S: Service<(), Response = hyper::Response<hyper::body::Incoming>, Error = BoxError>,
{
    let mut seen = Seen::default();
    let mut last_rejection = None;
    for _ in 0..CALLS {
        match client.ready().await.unwrap().call(()).await {
            Ok(response) if response.status().is_server_error() => seen.failed += 1,
            Ok(_) => seen.ok += 1,
            Err(error) => {
                let open = CircuitOpen::find(&*error)
                    .unwrap_or_else(|| panic!("expected a fast rejection, got {error}"));
                last_rejection = Some(open.clone());
                seen.fast_failed += 1;
            }
        }
    }
    (seen, last_rejection)
}

#[tokio::test]
async fn per_endpoint_breakers_route_around_fail_fast_and_recover() {
    let endpoints = endpoints().await;
    let group = EndpointBreakers::new(
        Config::builder()
            .name("replicas")
            .consecutive_failures(TRIP_AFTER)
            .open_duration(OPEN_FOR)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    let list = ServiceList::new(endpoints.iter().map(client_for).collect::<Vec<_>>());
    let mut client = group.fail_fast(Balance::new(PendingRequestsDiscover::new(
        group.discover_classified(list, HttpClassifier::new()),
        CompleteOnResponse::default(),
    )));

    // One endpoint sick: its breaker trips on its first failures and the balancer
    // sends every later call to the others.
    endpoints[0].state.sick.store(true, SeqCst);
    let (seen, _) = make_calls(&mut client).await;
    assert_eq!(
        seen,
        Seen {
            failed: TRIP_AFTER as usize,
            fast_failed: 0,
            ok: CALLS - 3
        }
    );
    assert_eq!(hits(&endpoints)[0], TRIP_AFTER as usize);
    assert_eq!(group.get(&0).unwrap().state(), State::Open);

    // Every endpoint sick: each fails until its breaker trips, then every call fails
    // fast, with the earliest moment an endpoint may be probed.
    set_sick(&endpoints, true);
    let before = hits(&endpoints);
    let (seen, rejection) = make_calls(&mut client).await;
    let reached = (ENDPOINTS - 1) * TRIP_AFTER as usize;
    assert_eq!(
        seen,
        Seen {
            failed: reached,
            fast_failed: CALLS - reached,
            ok: 0
        }
    );
    let after = hits(&endpoints);
    assert_eq!(after[0], before[0], "the open endpoint was not called");
    assert!(
        after.iter().skip(1).all(|&h| h >= TRIP_AFTER as usize),
        "{after:?}"
    );
    let rejection = rejection.expect("fast failures");
    assert_eq!(
        (&*rejection.name, rejection.state),
        ("replicas", State::Open)
    );
    let retry_after = rejection.retry_after.expect("open periods end");
    assert!(retry_after <= OPEN_FOR && retry_after > OPEN_FOR - Duration::from_secs(10));
    assert_eq!(group.ejected(), ENDPOINTS);
    assert_eq!(group.rejected(), seen.fast_failed as u64);

    // All healed: once the open periods end, a probe per endpoint closes it.
    set_sick(&endpoints, false);
    let_time_pass(OPEN_FOR).await;
    let (seen, _) = make_calls(&mut client).await;
    assert_eq!(
        seen,
        Seen {
            failed: 0,
            fast_failed: 0,
            ok: CALLS
        }
    );
    assert_eq!(group.ejected(), 0);
    for (_, breaker) in group.breakers() {
        assert_eq!(breaker.state(), State::Closed, "{}", breaker.name());
    }
    for endpoint in endpoints {
        endpoint.server.stop().await;
    }
}

#[tokio::test]
async fn without_breakers_the_balancer_keeps_calling_a_sick_endpoint() {
    let endpoints = endpoints().await;
    let list = ServiceList::new(endpoints.iter().map(client_for).collect::<Vec<_>>());
    let mut client = Balance::new(PendingRequestsDiscover::new(
        list,
        CompleteOnResponse::default(),
    ));
    endpoints[0].state.sick.store(true, SeqCst);
    let (seen, _) = make_calls(&mut client).await;
    // p2c spreads sequential calls evenly: the sick endpoint gets about a quarter of
    // them (fewer than 4 of 100 has a probability below 1e-8).
    assert!(seen.failed > TRIP_AFTER as usize, "{seen:?}");
    assert_eq!(hits(&endpoints)[0], seen.failed);
    set_sick(&endpoints, true);
    let (seen, _) = make_calls(&mut client).await;
    assert_eq!(seen.failed, CALLS, "every call reaches a sick endpoint");
    for endpoint in endpoints {
        endpoint.server.stop().await;
    }
}
