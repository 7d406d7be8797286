//! Prometheus scrape through a trip and a recovery (feature `metrics`): a scrape
//! endpoint as in examples/prometheus.rs (`Registry::export_metrics`, then the
//! recorder's `render`) served by axum on 127.0.0.1, scraped over TCP.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::server::serve_axum;
use crate::support::{http_get, let_time_pass};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_circuit_breaker::{Config, Registry, State, Window};

/// `GET /metrics`: copies the breakers' counters into the recorder, then renders every
/// series (what the example's endpoint does on each scrape).
fn scrape_endpoint(registry: Registry, handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            registry.export_metrics();
            std::future::ready(handle.render())
        }),
    )
}

/// The scraped series: `name{sorted labels}` to value.
type Series = BTreeMap<String, f64>;

/// One `GET /metrics`, parsed.
fn scrape(addr: std::net::SocketAddr) -> Series {
    let (status, body) = http_get(addr, "/metrics");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    parse(&body)
}

/// Parses the Prometheus text format, sorting each series' labels.
fn parse(text: &str) -> Series {
    let mut series = Series::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.rsplit_once(' ').expect("name and value");
        let key = match key.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => key.to_owned(),
        };
        series.insert(key, value.parse().expect("a number"));
    }
    series
}

fn value(series: &Series, key: &str) -> f64 {
    *series
        .get(key)
        .unwrap_or_else(|| panic!("no series {key} in {series:#?}"))
}

fn state_of(series: &Series, state: &str) -> f64 {
    value(
        series,
        &format!(r#"circuit_breaker_state{{breaker="scraped",state="{state}"}}"#),
    )
}

/// The process-wide recorder, installed once for every test of this binary. Every
/// breaker of the binary exports its transitions to it, so the breakers scraped here
/// have names no other test of the binary uses.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
            tower_circuit_breaker::export::describe_metrics();
            handle
        })
        .clone()
}

#[tokio::test]
async fn a_scrape_follows_a_trip_and_a_recovery() {
    let handle = recorder();

    let registry = Registry::new();
    // Long enough that the scrape right after the trip still finds it open (real time).
    let open_for = Duration::from_secs(30);
    let db = registry.get_or_insert(
        "scraped",
        Config::builder()
            .consecutive_failures(2)
            // A window, so the breaker has a recent rate to export.
            .sliding_window(Window::count(10))
            .open_duration(open_for)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    );
    let app = scrape_endpoint(registry.clone(), handle);
    let server = serve_axum(app).await;
    let addr = server.addr;
    let get = move || tokio::task::spawn_blocking(move || scrape(addr));

    // Without a window there is no recent rate: the rate gauges are left out rather
    // than filled with a lifetime ratio that a dashboard would take for one.
    let no_window = registry.get_or_insert("no_window", Config::default());
    no_window.try_acquire().unwrap().failure();

    // Trip: one success, two failures, one rejection.
    db.try_acquire().unwrap().success();
    db.try_acquire().unwrap().failure();
    db.try_acquire().unwrap().failure();
    assert!(db.try_acquire().is_err());
    let tripped = get().await.unwrap();
    let calls = |outcome: &str| {
        format!(r#"circuit_breaker_calls_total{{breaker="scraped",outcome="{outcome}"}}"#)
    };
    assert_eq!(value(&tripped, &calls("success")), 1.0);
    assert_eq!(value(&tripped, &calls("failure")), 2.0);
    assert_eq!(value(&tripped, &calls("ignored")), 0.0);
    assert_eq!(
        value(
            &tripped,
            r#"circuit_breaker_rejected_total{breaker="scraped"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &tripped,
            r#"circuit_breaker_would_be_trips_total{breaker="scraped"}"#
        ),
        0.0,
        "a real trip, not a metrics-only one"
    );
    let failure_rate = value(
        &tripped,
        r#"circuit_breaker_failure_rate{breaker="scraped"}"#,
    );
    assert!((failure_rate - 2.0 / 3.0).abs() < 1e-9, "{failure_rate}");
    assert_eq!(
        value(
            &tripped,
            r#"circuit_breaker_slow_call_rate{breaker="scraped"}"#
        ),
        0.0
    );
    assert!(!tripped.contains_key(r#"circuit_breaker_failure_rate{breaker="no_window"}"#));
    assert!(!tripped.contains_key(r#"circuit_breaker_slow_call_rate{breaker="no_window"}"#));
    assert_eq!(
        value(
            &tripped,
            r#"circuit_breaker_calls_total{breaker="no_window",outcome="failure"}"#
        ),
        1.0
    );
    assert_eq!(state_of(&tripped, "open"), 1.0);
    assert_eq!(state_of(&tripped, "closed"), 0.0);
    let transitions = |from: &str, to: &str| {
        format!(r#"circuit_breaker_transitions_total{{breaker="scraped",from="{from}",to="{to}"}}"#)
    };
    assert_eq!(value(&tripped, &transitions("closed", "open")), 1.0);

    // Recovery: after the open duration (the server runs on real time; the breaker's
    // clock is moved past the open duration), one successful probe closes the breaker.
    let_time_pass(open_for).await;
    db.try_acquire().expect("probe admitted").success();
    assert_eq!(db.state(), State::Closed);
    let recovered = get().await.unwrap();
    assert_eq!(state_of(&recovered, "closed"), 1.0);
    assert_eq!(
        state_of(&recovered, "open"),
        0.0,
        "the old state's series returns to 0"
    );
    assert_eq!(state_of(&recovered, "half_open"), 0.0);
    assert_eq!(value(&recovered, &transitions("open", "half_open")), 1.0);
    assert_eq!(value(&recovered, &transitions("half_open", "closed")), 1.0);
    assert_eq!(value(&recovered, &calls("success")), 2.0);
    assert_eq!(
        value(
            &recovered,
            r#"circuit_breaker_rejected_total{breaker="scraped"}"#
        ),
        1.0
    );

    assert!(
        server.stop().await,
        "the server did not shut down within 5 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_periodic_export_keeps_counters_current_without_double_counting() {
    let handle = recorder();
    let registry = Registry::new();
    let periodic = registry.get_or_insert("periodic", Config::default());
    let exporter = tokio::spawn(
        registry
            .clone()
            .export_metrics_every(Duration::from_secs(5)),
    );
    let successes = r#"circuit_breaker_calls_total{breaker="periodic",outcome="success"}"#;

    for _ in 0..3 {
        periodic.try_acquire().unwrap().success();
    }
    tokio::time::sleep(Duration::from_secs(6)).await; // at least one tick after the calls
    assert_eq!(value(&parse(&handle.render()), successes), 3.0);

    periodic.try_acquire().unwrap().success();
    tokio::time::sleep(Duration::from_secs(10)).await; // two more ticks: no double count
    assert_eq!(value(&parse(&handle.render()), successes), 4.0);
    assert_eq!(
        value(
            &parse(&handle.render()),
            r#"circuit_breaker_state{breaker="periodic",state="closed"}"#
        ),
        1.0
    );
    exporter.abort();
}
