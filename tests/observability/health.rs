//! Health as a readiness probe or dashboard reads it: pure reads that reflect time, so
//! an ended open period reads "ready to probe" even when no call arrives.

use std::time::Duration;

use tower_circuit_breaker::{Config, Health, Registry, State};

#[tokio::test(start_paused = true)]
async fn an_ended_open_period_reads_ready_to_probe_without_any_call() {
    let registry = Registry::new();
    let open_for = Duration::from_secs(30);
    let config = Config::builder()
        .consecutive_failures(1)
        .open_duration(open_for)
        .build()
        .unwrap();
    let db = registry.get_or_insert("db", config);
    registry.get_or_insert("cache", Config::default());

    db.try_acquire().unwrap().failure();
    let report = registry.health();
    assert_eq!(
        (db.state(), db.health(), report.health),
        (State::Open, Health::Red, Health::Red)
    );
    assert_eq!(db.metrics().retry_after, Some(open_for));

    tokio::time::advance(open_for - Duration::from_millis(1)).await;
    assert_eq!(db.health(), Health::Red, "still within the open period");
    assert_eq!(db.metrics().retry_after, Some(Duration::from_millis(1)));

    // The open period ends and no call arrives: every read says "ready to probe".
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!((db.state(), db.health()), (State::HalfOpen, Health::Yellow));
    let metrics = db.metrics();
    assert_eq!(
        (metrics.state, metrics.retry_after),
        (State::HalfOpen, None)
    );
    assert_eq!(metrics.state_changes, 1, "reads moved nothing");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        db.metrics().time_in_state,
        Duration::from_secs(5),
        "since the period ended"
    );

    let report = registry.health();
    assert_eq!(
        report.health,
        Health::Yellow,
        "the worst breaker is only probing"
    );
    let line = report
        .breakers
        .iter()
        .find(|line| &*line.name == "db")
        .unwrap();
    assert_eq!(
        (line.state, line.health, line.retry_after),
        (State::HalfOpen, Health::Yellow, None)
    );
    assert!(report
        .to_json()
        .contains(r#""name":"db","state":"half_open","health":"yellow""#));

    // The first call is the probe; its failure opens the breaker again: red.
    db.try_acquire().expect("admitted as a probe").failure();
    assert_eq!((db.state(), db.health()), (State::Open, Health::Red));
    assert_eq!(db.metrics().state_changes, 3, "open -> half-open -> open");
}

#[tokio::test(start_paused = true)]
async fn forced_open_stays_red_whatever_the_time() {
    let registry = Registry::new();
    let db = registry.get_or_insert("db", Config::default());
    db.force_open();
    tokio::time::advance(Duration::from_secs(3_600)).await;
    assert_eq!(
        (db.state(), registry.health().health),
        (State::ForcedOpen, Health::Red)
    );
}
