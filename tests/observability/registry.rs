//! `Registry`: named breakers shared across call sites, and its health report.

use std::time::Duration;

use tower_circuit_breaker::{CircuitBreaker, Config, Health, Registry, State};

fn trips_on_first_failure() -> Config {
    Config::builder()
        .name("ignored")
        .consecutive_failures(1)
        .build()
        .unwrap()
}

#[test]
fn call_sites_asking_for_one_name_share_one_breaker() {
    let registry = Registry::new();
    let first = registry.get_or_insert("payments", trips_on_first_failure());
    let elsewhere = registry.clone(); // clones share the map
    let second = elsewhere.get_or_insert("payments", Config::default());
    assert_eq!(first.name(), "payments", "the registry names the breaker");
    assert_eq!(
        second.config().consecutive_failures(),
        Some(1),
        "the first config wins"
    );
    first.try_acquire().unwrap().failure();
    assert_eq!(second.state(), State::Open);
    assert_eq!(registry.get("payments").unwrap().state(), State::Open);
    // Its rejections say so too, not the config's "ignored".
    let rejected = second.try_acquire().expect_err("open");
    assert_eq!(rejected.name, "payments");
    assert_eq!(registry.len(), 1);
}

#[test]
fn concurrent_first_use_creates_exactly_one_breaker() {
    let registry = Registry::new();
    let breakers: Vec<CircuitBreaker> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| registry.get_or_insert("db", trips_on_first_failure())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    breakers[3].try_acquire().unwrap().failure();
    assert!(breakers.iter().all(|b| b.state() == State::Open));
    assert_eq!(registry.len(), 1);
}

#[test]
fn iteration_is_sorted_and_removal_forgets() {
    let registry = Registry::new();
    for name in ["orders", "auth", "users"] {
        registry.get_or_insert(name, Config::default());
    }
    let names: Vec<String> = registry.into_iter().map(|b| b.name().to_owned()).collect();
    assert_eq!(names, ["auth", "orders", "users"]);

    let removed = registry.remove("orders").expect("registered");
    assert_eq!(removed.name(), "orders");
    assert!(!registry.contains("orders"));
    assert!(registry.remove("orders").is_none());
    assert_eq!(registry.len(), 2);
    // A removed name starts afresh.
    removed.force_open();
    let fresh = registry.get_or_insert("orders", Config::default());
    assert_eq!(fresh.state(), State::Closed);
}

#[test]
fn insert_registers_a_prebuilt_breaker_and_replaces() {
    let registry = Registry::new();
    let old = CircuitBreaker::new(Config::builder().name("cache").build().unwrap());
    assert!(registry.insert(old.clone()).is_none());
    let new = CircuitBreaker::new(Config::builder().name("cache").build().unwrap());
    new.force_open();
    let replaced = registry.insert(new).expect("replaces the old one");
    assert_eq!(replaced.state(), old.state());
    assert_eq!(registry.get("cache").unwrap().state(), State::ForcedOpen);
    assert!(!registry.is_empty());
}

#[tokio::test(start_paused = true)]
async fn health_report_is_the_worst_breaker_and_renders_json() {
    let registry = Registry::new();
    assert_eq!(registry.health().health, Health::Green, "empty is green");
    let config = Config::builder()
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(30))
        .half_open_permits(1)
        .build()
        .unwrap();
    let db = registry.get_or_insert("db", config.clone());
    let api = registry.get_or_insert("api", config);
    api.try_acquire().unwrap().success();
    db.try_acquire().unwrap().failure();
    tokio::time::advance(Duration::from_secs(10)).await;

    let report = registry.health();
    assert_eq!(report.health, Health::Red);
    let db_line = &report.breakers[1];
    assert_eq!((db_line.name.as_ref(), db_line.state), ("db", State::Open));
    assert_eq!(db_line.failure_rate, 1.0);
    assert_eq!(db_line.retry_after, Some(Duration::from_secs(20)));
    assert_eq!(
        report.to_json(),
        concat!(
            r#"{"health":"red","breakers":["#,
            r#"{"name":"api","state":"closed","health":"green","failure_rate":0,"slow_call_rate":0,"calls":1,"rejected":0,"retry_after":null},"#,
            r#"{"name":"db","state":"open","health":"red","failure_rate":1,"slow_call_rate":0,"calls":1,"rejected":0,"retry_after":20}"#,
            "]}"
        )
    );

    // Probing: yellow.
    tokio::time::advance(Duration::from_secs(20)).await;
    let _probe = db.try_acquire().unwrap();
    assert_eq!(registry.health().health, Health::Yellow);
}
