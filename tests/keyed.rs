//! Keyed breakers: one breaker per key, bounded, evicting idle keys but never an open
//! breaker within its open duration.

mod common;

use std::time::Duration;

use common::*;
use tower::{Layer, Service, ServiceExt};
use tower_circuit_breaker::{Config, Error, KeyedCircuitBreakerLayer, KeyedCircuitBreakers, State};

const SECOND: Duration = Duration::from_secs(1);

fn config() -> Config {
    builder()
        .consecutive_failures(2)
        .open_duration(30 * SECOND)
        .build()
        .unwrap()
}

fn bounded(max_keys: usize, idle: Duration) -> KeyedCircuitBreakers<String> {
    KeyedCircuitBreakers::builder(config())
        .max_keys(max_keys)
        .idle_timeout(idle)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_keys_stay_under_the_bound() {
    let breakers = bounded(1_000, 60 * SECOND);
    let mut peak = 0;
    for i in 0..100_000 {
        let breaker = breakers.get_or_insert(&format!("tenant-{i}"));
        breaker.try_acquire().unwrap().success();
        if i % 97 == 0 {
            peak = peak.max(breakers.len());
        }
    }
    peak = peak.max(breakers.len());
    assert!(peak <= 1_000, "peak {peak} over the bound");
    assert!(
        breakers.len() >= 900,
        "the bound is used, not undershot: {}",
        breakers.len()
    );
    assert_eq!(breakers.overflows(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_sick_key_trips_alone_while_the_others_flow() {
    let keyed = KeyedCircuitBreakerLayer::with_breakers(bounded(100, 60 * SECOND), |r: &u32| {
        if *r < 100 {
            "sick".to_owned()
        } else {
            format!("healthy-{}", r % 10)
        }
    });
    let sick = Backend::new(Mode::Fail);
    let healthy = Backend::new(Mode::Succeed);
    // One inner service that fails for the sick key's requests only.
    let inner = tower::service_fn({
        let (sick, healthy) = (sick.clone(), healthy.clone());
        move |r: u32| {
            let mut backend = if r < 100 {
                sick.clone()
            } else {
                healthy.clone()
            };
            async move { backend.ready().await?.call(r).await }
        }
    });
    let mut svc = keyed.layer(inner);
    for round in 0..10u32 {
        let sick_result = svc.ready().await.unwrap().call(round).await;
        if round >= 2 {
            assert!(matches!(sick_result, Err(Error::Open(_))), "round {round}");
        }
        for key in 0..10u32 {
            let value = 100 + key + 10 * round;
            assert_eq!(svc.ready().await.unwrap().call(value).await.unwrap(), value);
        }
    }
    assert_eq!(sick.hits(), 2, "the sick key was cut off after tripping");
    assert_eq!(healthy.hits(), 100);
    let breakers = keyed.breakers();
    let open = breakers.get(&"sick".to_owned()).unwrap();
    assert_eq!((open.name(), open.state()), ("test/sick", State::Open));
    assert_eq!(open.metrics().rejected, 8);
    for (key, breaker) in breakers.breakers() {
        if key != "sick" {
            assert_eq!(breaker.state(), State::Closed, "{key}");
        }
    }
    assert_eq!(breakers.health().health, tower_circuit_breaker::Health::Red);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_survives_a_flood_of_new_keys_until_its_open_duration_ends() {
    let breakers = bounded(64, SECOND);
    let sick = breakers.get_or_insert(&"sick".to_owned());
    sick.try_acquire().unwrap().failure();
    sick.try_acquire().unwrap().failure();
    assert_eq!(sick.state(), State::Open);
    tokio::time::advance(10 * SECOND).await; // idle for far longer than the idle timeout
    for i in 0..10_000 {
        breakers.get_or_insert(&format!("new-{i}"));
    }
    assert!(breakers.len() <= 64);
    let kept = breakers.get(&"sick".to_owned()).expect("still open: kept");
    assert!(kept.try_acquire().is_err(), "still rejecting");

    tokio::time::advance(30 * SECOND).await; // open duration over, and idle
    assert!(breakers.evict_idle() >= 1);
    assert!(breakers.get(&"sick".to_owned()).is_none());
}

#[tokio::test(start_paused = true)]
async fn idle_keys_expire_and_busy_ones_stay() {
    let breakers = bounded(1_000, 60 * SECOND);
    for key in ["a", "b", "c"] {
        breakers.get_or_insert(&key.to_owned());
    }
    tokio::time::advance(40 * SECOND).await;
    breakers.get_or_insert(&"a".to_owned()); // used again: refreshed
    tokio::time::advance(30 * SECOND).await;
    assert_eq!(breakers.evict_idle(), 2);
    assert_eq!(breakers.len(), 1);
    assert!(breakers.get(&"a".to_owned()).is_some());
    assert!(breakers.remove(&"a".to_owned()).is_some());
    assert!(breakers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_shard_full_of_open_breakers_hands_out_an_unkept_breaker() {
    let breakers = bounded(1, SECOND);
    let sick = breakers.get_or_insert(&"sick".to_owned());
    sick.try_acquire().unwrap().failure();
    sick.try_acquire().unwrap().failure();
    let other = breakers.get_or_insert(&"other".to_owned());
    assert_eq!(other.state(), State::Closed);
    assert_eq!(breakers.overflows(), 1);
    assert_eq!(breakers.len(), 1);
    assert!(breakers.get(&"sick".to_owned()).is_some());
}

#[test]
fn invalid_bounds_are_typed_errors() {
    let err = KeyedCircuitBreakers::<String>::builder(Config::default())
        .max_keys(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_keys");
    let err = KeyedCircuitBreakers::<String>::builder(Config::default())
        .idle_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "idle_timeout");
}

#[test]
fn threads_share_one_map_and_lose_no_call() {
    let breakers = bounded(1_000, 60 * SECOND);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let breakers = &breakers;
            scope.spawn(move || {
                for i in 0..5_000 {
                    let key = format!("key-{}", (i + thread) % 50);
                    breakers
                        .get_or_insert(&key)
                        .try_acquire()
                        .unwrap()
                        .success();
                }
            });
        }
    });
    assert_eq!(
        breakers.len(),
        50,
        "every thread found the same 50 breakers"
    );
    let total: u64 = breakers
        .breakers()
        .iter()
        .map(|(_, breaker)| breaker.metrics().successes)
        .sum();
    assert_eq!(total, 20_000);
}

#[tokio::test(start_paused = true)]
async fn a_removed_key_starts_over_with_a_fresh_breaker() {
    let breakers = bounded(100, 60 * SECOND);
    let sick = "tenant-a".to_owned();
    for _ in 0..2 {
        breakers.try_acquire(&sick).unwrap().failure();
    }
    assert_eq!(breakers.try_acquire(&sick).unwrap_err().state, State::Open);
    let removed = breakers.remove(&sick).expect("the key was kept");
    assert_eq!(
        removed.state(),
        State::Open,
        "the removed breaker is handed back"
    );
    assert!(breakers.get(&sick).is_none());
    assert!(breakers.remove(&sick).is_none(), "nothing left to remove");
    breakers
        .try_acquire(&sick)
        .expect("a fresh breaker is closed")
        .success();
    assert_eq!(breakers.get(&sick).unwrap().metrics().successes, 1);
    assert_eq!(breakers.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn try_acquire_moves_an_elapsed_open_breaker_to_half_open() {
    let breakers = bounded(100, 600 * SECOND);
    let key = "tenant-a".to_owned();
    for _ in 0..2 {
        breakers.try_acquire(&key).unwrap().failure();
    }
    let open = breakers.try_acquire(&key).unwrap_err();
    assert_eq!(open.retry_after, Some(30 * SECOND));
    tokio::time::advance(30 * SECOND).await;
    let probe = breakers
        .try_acquire(&key)
        .expect("the open duration is over");
    assert!(probe.is_probe());
    assert_eq!(breakers.get(&key).unwrap().state(), State::HalfOpen);
    probe.success();
    assert_eq!(breakers.get(&key).unwrap().metrics().successes, 1);
}
