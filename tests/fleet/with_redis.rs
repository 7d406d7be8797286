//! Fleet-wide state against a real `redis-server` (feature `redis`).
//!
//! Redis is real, so these tests use real time; every wait is a bounded poll and the
//! whole file runs in a few seconds.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::instance::eventually;
use crate::proxy::Proxy;
use crate::redis_server::RedisServer;
use crate::support::log_capture;
use tower_circuit_breaker::fleet::{Fleet, FleetSync, RedisStore};
use tower_circuit_breaker::{CircuitBreaker, Config, Event, State, TransitionReason};

const POLL: Duration = Duration::from_millis(20);
const STORE_TIMEOUT: Duration = Duration::from_millis(200);
/// The documented staleness bound: one poll interval plus one store round trip, plus
/// the round trip of the instance that publishes.
const PROPAGATION: Duration = Duration::from_millis(20 + 2 * 200);

struct Instance {
    breaker: CircuitBreaker,
    sync: FleetSync,
}

fn config(open_for: Duration) -> Config {
    Config::builder()
        .name("db")
        .consecutive_failures(3)
        .open_duration(open_for)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

fn store(server: &RedisServer) -> RedisStore {
    store_at(&server.url())
}

fn store_at(url: &str) -> RedisStore {
    RedisStore::open(url, "fleet-test")
        .unwrap()
        .timeout(STORE_TIMEOUT)
        .unwrap()
}

fn instance(store: &RedisStore, config: Config, id: usize) -> Instance {
    let breaker = CircuitBreaker::new(config);
    let sync = Fleet::new(store.clone())
        .poll_interval(POLL)
        .probe_lease(Duration::from_secs(1))
        .instance_id(&format!("instance-{id}"))
        .sync(&breaker)
        .unwrap();
    Instance { breaker, sync }
}

async fn fleet(server: &RedisServer, open_for: Duration, n: usize) -> Vec<Instance> {
    fleet_at(&server.url(), open_for, n).await
}

async fn fleet_at(url: &str, open_for: Duration, n: usize) -> Vec<Instance> {
    let store = store_at(url);
    let fleet: Vec<_> = (0..n)
        .map(|i| instance(&store, config(open_for), i))
        .collect();
    eventually(
        Duration::from_secs(3),
        "every instance reaches Redis",
        || fleet.iter().all(|i| i.sync.is_connected()),
    )
    .await;
    fleet
}

fn trip(breaker: &CircuitBreaker) {
    for _ in 0..3 {
        breaker.try_acquire().expect("closed").failure();
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn one_instance_trips_and_the_others_open_within_the_stated_delay() {
    let server = RedisServer::start();
    let fleet = fleet(&server, Duration::from_secs(5), 5).await;
    let mut events = fleet[3].breaker.subscribe();

    trip(&fleet[0].breaker);
    let took = eventually(PROPAGATION, "the fleet opens", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    println!("fleet opened {took:?} after the trip");

    for other in &fleet[1..] {
        let rejected = other.breaker.try_acquire().unwrap_err();
        let left = rejected
            .retry_after
            .expect("open until the published deadline");
        assert!(left <= Duration::from_secs(5), "{left:?}");
        assert!(left >= Duration::from_secs(4), "{left:?}");
    }
    let reason = loop {
        match events.try_recv().expect("a transition event") {
            Event::StateTransition {
                to: State::Open,
                reason,
                ..
            } => break reason,
            _ => continue,
        }
    };
    assert_eq!(reason, TransitionReason::Remote);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn the_fleet_probes_through_one_instance_at_a_time_and_closes_together() {
    let server = RedisServer::start();
    let open_for = Duration::from_millis(300);
    let fleet = fleet(&server, open_for, 5).await;
    trip(&fleet[0].breaker);
    eventually(PROPAGATION, "the fleet opens", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;

    // Every instance calls the sick backend every 10 ms for 1.5 s (five open periods).
    let backend_calls = AtomicUsize::new(0);
    let mut probers = std::collections::BTreeSet::new();
    let run_for = Duration::from_millis(1500);
    let started = Instant::now();
    while started.elapsed() < run_for {
        for (i, instance) in fleet.iter().enumerate() {
            if let Ok(permit) = instance.breaker.try_acquire() {
                backend_calls.fetch_add(1, SeqCst);
                probers.insert(i);
                permit.failure();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let probes = backend_calls.load(SeqCst);
    let periods = (run_for.as_millis() / open_for.as_millis()) as usize;
    println!("{probes} probes in {periods} open periods by instances {probers:?}");
    // Uncoordinated, each of the 5 instances would probe once per period (~25).
    assert!(probes >= 1, "recovery was never probed");
    assert!(
        probes <= periods + 1,
        "{probes} probes in {periods} periods"
    );

    // The backend recovers: the next probe succeeds and the whole fleet closes.
    let closed_at = Instant::now();
    eventually(
        open_for + Duration::from_secs(1) + PROPAGATION,
        "a probe succeeds",
        || {
            fleet.iter().any(|i| match i.breaker.try_acquire() {
                Ok(permit) => {
                    permit.success();
                    true
                }
                Err(_) => false,
            })
        },
    )
    .await;
    eventually(PROPAGATION, "the fleet closes", || {
        fleet.iter().all(|i| i.breaker.state() == State::Closed)
    })
    .await;
    println!("fleet closed {:?} after recovery", closed_at.elapsed());
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn with_redis_down_instances_run_on_local_state_and_resync_when_it_returns() {
    let mut server = RedisServer::start();
    let port = server.port();
    let logs = log_capture::capture("fleet");
    let fleet = fleet(&server, Duration::from_secs(3), 5).await;

    server.kill();
    eventually(Duration::from_secs(2), "every sync notices", || {
        fleet.iter().all(|i| !i.sync.is_connected())
    })
    .await;
    // No call fails or waits because Redis is gone, and local trip rules still work.
    for instance in &fleet {
        instance.breaker.try_acquire().expect("closed").success();
    }
    let slowest = slowest_call(&fleet, 1_000);
    println!("redis down: slowest of 5 000 calls {slowest:?}");
    assert!(slowest < STORE_TIMEOUT / 10, "{slowest:?}");
    trip(&fleet[1].breaker);
    // Several poll intervals with Redis down: the others stay closed, nobody floods
    // the log.
    tokio::time::sleep(POLL * 10).await;
    for (i, instance) in fleet.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(instance.breaker.state(), State::Closed, "instance {i}");
        instance.breaker.try_acquire().expect("closed").success();
    }
    assert_eq!(
        logs.count("unreachable"),
        fleet.len(),
        "one warning per instance"
    );

    let _server = RedisServer::start_on(port);
    let took = eventually(
        Duration::from_secs(2) + PROPAGATION,
        "the fleet learns the open instance 1 could not publish",
        || fleet.iter().all(|i| i.breaker.state() == State::Open),
    )
    .await;
    println!("resynced {took:?} after Redis came back");
    assert!(fleet.iter().all(|i| i.sync.is_connected()));
    assert_eq!(logs.count("unreachable"), fleet.len());
    assert_eq!(logs.count("reachable again"), fleet.len());
    assert_closes_reach_the_fleet(&fleet).await;
}

/// After a fault: a close (an operator's reset on one instance) reaches every other
/// within the stated bound, as opens did.
async fn assert_closes_reach_the_fleet(fleet: &[Instance]) {
    fleet[0].breaker.reset();
    let took = eventually(PROPAGATION, "the close reaches the fleet", || {
        fleet.iter().all(|i| i.breaker.state() == State::Closed)
    })
    .await;
    println!("close reached the fleet in {took:?}");
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_new_instance_learns_the_fleet_state_and_keys_expire() {
    let server = RedisServer::start();
    let store = store(&server);
    let first = instance(&store, config(Duration::from_secs(5)), 0);
    eventually(Duration::from_secs(3), "connected", || {
        first.sync.is_connected()
    })
    .await;
    trip(&first.breaker);

    let mut redis = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let state_key = store.key("db", "state");
    let mut ttl = -2;
    for _ in 0..100 {
        ttl = redis::cmd("PTTL")
            .arg(&state_key)
            .query_async::<i64>(&mut redis)
            .await
            .unwrap();
        if ttl > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ttl > 0, "`{state_key}` has a TTL, got {ttl}");
    let deadline: i64 = redis::cmd("PTTL")
        .arg(store.key("db", "deadline"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=5000).contains(&deadline), "deadline PTTL {deadline}");

    // An instance started later (a restart) opens for the rest of the period.
    let late = instance(&store, config(Duration::from_secs(5)), 1);
    eventually(PROPAGATION + POLL, "the new instance opens", || {
        late.breaker.state() == State::Open
    })
    .await;
    let left = late.breaker.try_acquire().unwrap_err().retry_after.unwrap();
    assert!(
        left <= Duration::from_secs(5) && left >= Duration::from_secs(4),
        "{left:?}"
    );

    // An operator reset on the first instance closes the fleet and clears the keys
    // that only matter while open.
    first.breaker.reset();
    eventually(PROPAGATION, "the new instance closes", || {
        late.breaker.state() == State::Closed
    })
    .await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(store.key("db", "deadline"))
        .arg(store.key("db", "probe"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_slow_redis_never_slows_calls_and_is_resynced_after() {
    let server = RedisServer::start();
    let logs = log_capture::capture("fleet");
    let fleet = fleet(&server, Duration::from_secs(3), 3).await;

    // Redis stops answering for 1 s (every client paused), longer than the timeout.
    let mut admin = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1000)
        .arg("ALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let paused = Instant::now();

    trip(&fleet[0].breaker);
    let slowest = slowest_call(&fleet[1..], 1_000);
    println!("paused redis: slowest of 2 000 calls {slowest:?}");
    assert!(
        slowest < STORE_TIMEOUT / 10,
        "calls do not wait for Redis: {slowest:?}"
    );
    eventually(Duration::from_secs(1), "the syncs time out", || {
        fleet.iter().all(|i| !i.sync.is_connected())
    })
    .await;
    assert!(
        paused.elapsed() < Duration::from_secs(1),
        "noticed while paused"
    );
    assert_eq!(fleet[1].breaker.state(), State::Closed);

    eventually(
        Duration::from_secs(1) + PROPAGATION,
        "the open reaches the fleet after the pause",
        || fleet.iter().all(|i| i.breaker.state() == State::Open),
    )
    .await;
    println!(
        "paused redis: fleet open {:?} after the pause ended",
        paused.elapsed().saturating_sub(Duration::from_secs(1))
    );
    assert!(fleet.iter().all(|i| i.sync.is_connected()));
    assert_eq!(logs.count("unreachable"), fleet.len(), "one warning each");
    assert_closes_reach_the_fleet(&fleet).await;
}

/// The longest a call took, over `calls` calls on each of `instances`: calls never
/// touch the store, whatever it is doing.
fn slowest_call(instances: &[Instance], calls: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for instance in instances {
        for _ in 0..calls {
            let started = Instant::now();
            if let Ok(permit) = instance.breaker.try_acquire() {
                permit.success();
            }
            slowest = slowest.max(started.elapsed());
        }
    }
    slowest
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_partition_never_slows_calls_and_the_fleet_reconverges_after() {
    let server = RedisServer::start();
    let proxy = Proxy::start(([127, 0, 0, 1], server.port()).into()).await;
    let logs = log_capture::capture("fleet");
    let fleet = fleet_at(&proxy.url(), Duration::from_secs(5), 3).await;

    // The route to Redis drops everything, connections stay open.
    proxy.black_hole();
    trip(&fleet[0].breaker);
    let slowest = slowest_call(&fleet[1..], 1_000);
    println!("partition: slowest of 2 000 calls {slowest:?}");
    assert!(slowest < STORE_TIMEOUT / 10, "{slowest:?}");
    let noticed = eventually(STORE_TIMEOUT * 3, "every sync notices", || {
        fleet.iter().all(|i| !i.sync.is_connected())
    })
    .await;
    println!("partition: noticed after {noticed:?}");
    tokio::time::sleep(POLL * 10).await;
    for instance in &fleet[1..] {
        assert_eq!(
            instance.breaker.state(),
            State::Closed,
            "runs on local state"
        );
    }
    assert_eq!(logs.count("unreachable"), fleet.len(), "one warning each");

    proxy.heal();
    let took = eventually(
        STORE_TIMEOUT * 2 + PROPAGATION,
        "the open reaches the fleet after the partition",
        || fleet.iter().all(|i| i.breaker.state() == State::Open),
    )
    .await;
    println!("partition: fleet open {took:?} after healing");
    assert_eq!(logs.count("unreachable"), fleet.len());
    assert_eq!(logs.count("reachable again"), fleet.len());
    assert_closes_reach_the_fleet(&fleet).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_refusing_writes_never_slows_calls_and_the_open_is_published_after() {
    let server = RedisServer::start();
    let logs = log_capture::capture("fleet");
    let fleet = fleet(&server, Duration::from_secs(5), 3).await;
    let mut admin = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let config_set = |key: &'static str, value: &'static str| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg(key).arg(value);
        cmd
    };
    // Out of memory with no eviction: every write fails with an error, reads work.
    config_set("maxmemory-policy", "noeviction")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    config_set("maxmemory", "1")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();

    trip(&fleet[0].breaker);
    let slowest = slowest_call(&fleet[1..], 1_000);
    println!("write errors: slowest of 2 000 calls {slowest:?}");
    assert!(slowest < STORE_TIMEOUT / 10, "{slowest:?}");
    eventually(
        PROPAGATION,
        "the tripped instance's publication fails",
        || !fleet[0].sync.is_connected(),
    )
    .await;
    tokio::time::sleep(POLL * 10).await;
    for instance in &fleet[1..] {
        assert_eq!(
            instance.breaker.state(),
            State::Closed,
            "nothing was published"
        );
        assert!(instance.sync.is_connected(), "reads still work");
    }
    assert_eq!(
        logs.count("unreachable"),
        1,
        "only the publisher warns, once"
    );

    config_set("maxmemory", "0")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let took = eventually(PROPAGATION * 2, "the open reaches the fleet", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    println!("write errors: fleet open {took:?} after writes work again");
    assert_eq!(logs.count("unreachable"), 1);
    assert_eq!(logs.count("reachable again"), 1);
    assert_closes_reach_the_fleet(&fleet).await;
}
