//! Keyed breakers: one breaker per key, bounded, evicting idle keys but never an open
//! breaker within its open duration.

use std::time::Duration;

use crate::support::*;
use tower::{Layer, Service, ServiceExt};
use tower_circuit_breaker::{
    Config, Error, KeyedCircuitBreakerLayer, KeyedCircuitBreakerService, KeyedCircuitBreakers,
    State,
};

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
            match sick_result {
                // The rejection carries the key's own name, not the template's.
                Err(Error::Open(open)) => assert_eq!(open.name, "test/sick", "round {round}"),
                other => panic!("round {round}: expected a rejection, got {other:?}"),
            }
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

/// A request for `key` that the backend answers after `delay` (`None`: never), with
/// a failure or a success.
#[derive(Debug, Clone)]
struct Call {
    key: String,
    delay: Option<Duration>,
    fail: bool,
}

impl Call {
    fn ok(key: impl Into<String>) -> Call {
        Call {
            key: key.into(),
            delay: Some(Duration::ZERO),
            fail: false,
        }
    }

    fn slow(key: impl Into<String>, delay: Duration, fail: bool) -> Call {
        Call {
            key: key.into(),
            delay: Some(delay),
            fail,
        }
    }

    fn hanging(key: impl Into<String>) -> Call {
        Call {
            key: key.into(),
            delay: None,
            fail: false,
        }
    }
}

type Answer =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, BackendError>> + Send>>;

type CallService = KeyedCircuitBreakerService<
    tower::util::ServiceFn<fn(Call) -> Answer>,
    String,
    fn(&Call) -> String,
>;

fn answer(call: Call) -> Answer {
    Box::pin(async move {
        match call.delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => std::future::pending().await,
        }
        if call.fail {
            Err(BackendError("down"))
        } else {
            Ok(call.key)
        }
    })
}

fn call_key(call: &Call) -> String {
    call.key.clone()
}

/// One shard of `max_keys` breakers that trip on the first failure, and a keyed
/// service over the `Call` backend.
fn keyed_calls(max_keys: usize, idle: Duration) -> (KeyedCircuitBreakers<String>, CallService) {
    let config = builder()
        .consecutive_failures(1)
        .open_duration(30 * SECOND)
        .build()
        .unwrap();
    let breakers = KeyedCircuitBreakers::builder(config)
        .max_keys(max_keys)
        .idle_timeout(idle)
        .build()
        .unwrap();
    let layer =
        KeyedCircuitBreakerLayer::with_breakers(breakers.clone(), call_key as fn(&Call) -> String);
    let backend = tower::service_fn(answer as fn(Call) -> Answer);
    (breakers, layer.layer(backend))
}

/// Makes `count` calls, each for a new key, that succeed at once, a tick apart (so
/// that the least recently used key is well defined).
async fn flood(svc: &mut CallService, prefix: &str, count: usize) {
    for i in 0..count {
        tokio::time::advance(Duration::from_millis(100)).await;
        let key = format!("{prefix}-{i}");
        let answered = svc.ready().await.unwrap().call(Call::ok(&key)).await;
        assert_eq!(answered.unwrap(), key);
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_in_flight_trips_the_breaker_its_key_uses_next_despite_a_flood_of_keys() {
    let (breakers, mut svc) = keyed_calls(16, 600 * SECOND);
    let sick = "sick".to_owned();
    let slow = svc
        .ready()
        .await
        .unwrap()
        .call(Call::slow("sick", 10 * SECOND, true));
    // 16 other keys: the 16th finds the map full, with "sick" its least recently used.
    flood(&mut svc, "other", 16).await;
    assert_eq!(breakers.len(), 16);
    assert!(
        breakers.get(&sick).is_some(),
        "a breaker with a call in flight is kept"
    );
    assert!(matches!(
        slow.await,
        Err(Error::Inner(BackendError("down")))
    ));
    let next = svc.ready().await.unwrap().call(Call::ok("sick")).await;
    assert!(
        matches!(next, Err(Error::Open(_))),
        "the trip was not lost: {next:?}"
    );
    assert_eq!(breakers.get(&sick).unwrap().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn keys_with_calls_in_flight_stretch_max_keys_by_their_number_and_no_more() {
    const MAX: usize = 16;
    // Idle for long enough that `evict_idle` finds none idle after the 60 s calls.
    let (breakers, mut svc) = keyed_calls(MAX, 86_400 * SECOND);
    // 24 calls in flight on 24 keys: past the 16th, each new key finds every breaker
    // busy and is kept over the bound, by no more than the busy keys.
    let mut in_flight = Vec::new();
    for i in 0..24 {
        let busy_before = in_flight.len();
        let call = Call::slow(format!("busy-{i}"), 60 * SECOND, false);
        in_flight.push(svc.ready().await.unwrap().call(call));
        assert!(
            breakers.len() <= MAX + busy_before,
            "{} kept with {busy_before} keys in flight",
            breakers.len()
        );
    }
    assert_eq!(
        breakers.len(),
        24,
        "every key with a call in flight is kept"
    );
    assert_eq!(breakers.overflows(), 0);
    // New keys whose calls end at once: idle keys go first; the busy ones stay.
    for i in 0..50 {
        flood(&mut svc, &format!("quick-{i}"), 1).await;
        let len = breakers.len();
        assert!(len <= MAX + 24, "{len} kept with 24 keys in flight");
        assert_eq!(len, 25, "24 busy keys and the newest one");
    }
    for i in 0..24 {
        assert!(breakers.get(&format!("busy-{i}")).is_some(), "busy-{i}");
    }
    // Once the calls are over, the excess is given back by `evict_idle` ...
    for call in in_flight {
        call.await.unwrap();
    }
    assert_eq!(breakers.evict_idle(), 25 - MAX);
    assert_eq!(breakers.len(), MAX);
    // ... or by the next new key, which then finds the shard at its share.
    flood(&mut svc, "after", 8).await;
    assert_eq!(breakers.len(), MAX);
    assert_eq!(breakers.overflows(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_shard_of_open_breakers_takes_a_new_key_over_the_bound_only_while_one_has_a_call_in_flight(
) {
    let (breakers, mut svc) = keyed_calls(2, 600 * SECOND);
    // "sick" trips while a call it admitted before is still in flight.
    let quick = svc
        .ready()
        .await
        .unwrap()
        .call(Call::slow("sick", SECOND, true));
    let slow = svc
        .ready()
        .await
        .unwrap()
        .call(Call::slow("sick", 5 * SECOND, false));
    assert!(matches!(quick.await, Err(Error::Inner(_))));
    let failed = svc
        .ready()
        .await
        .unwrap()
        .call(Call::slow("open", SECOND, true));
    assert!(matches!(failed.await, Err(Error::Inner(_))));
    // Both breakers hold the circuit open, "sick" with a call in flight: new keys are
    // kept, one over the bound.
    flood(&mut svc, "kept", 2).await;
    assert_eq!((breakers.len(), breakers.overflows()), (3, 0));
    // Its call over, the shard holds nothing but open breakers: a new key gets a
    // breaker that is not kept.
    slow.await.unwrap();
    flood(&mut svc, "unkept", 1).await;
    assert_eq!((breakers.len(), breakers.overflows()), (2, 1));
    for key in ["sick", "open"] {
        assert_eq!(breakers.get(&key.to_owned()).unwrap().state(), State::Open);
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_whose_calls_have_all_finished_is_evictable_again() {
    let (breakers, mut svc) = keyed_calls(16, 600 * SECOND);
    let key = "was-busy".to_owned();
    let calls: Vec<_> = (0..3)
        .map(|_| svc.call(Call::slow(&key, 10 * SECOND, false)))
        .collect();
    flood(&mut svc, "first", 32).await;
    assert!(
        breakers.get(&key).is_some(),
        "kept while its calls are in flight"
    );
    let mut calls = calls.into_iter();
    calls.next().unwrap().await.unwrap();
    calls.next().unwrap().await.unwrap();
    flood(&mut svc, "second", 32).await;
    assert!(breakers.get(&key).is_some(), "one call is still in flight");
    calls.next().unwrap().await.unwrap();
    // Its last use was its calls' start: the least recently used key, evicted first.
    flood(&mut svc, "third", 1).await;
    assert!(
        breakers.get(&key).is_none(),
        "evicted once its calls are over"
    );
    assert_eq!(breakers.len(), 16);
}

#[tokio::test(start_paused = true)]
async fn a_call_longer_than_the_idle_timeout_keeps_its_key_until_it_ends() {
    let (breakers, mut svc) = keyed_calls(16, SECOND);
    let key = "slow".to_owned();
    let slow = svc
        .ready()
        .await
        .unwrap()
        .call(Call::slow(&key, 10 * SECOND, false));
    tokio::time::advance(5 * SECOND).await; // idle for longer than the idle timeout
    assert_eq!(breakers.evict_idle(), 0);
    assert!(
        breakers.get(&key).is_some(),
        "not idle: a call is in flight"
    );
    slow.await.unwrap();
    tokio::time::advance(2 * SECOND).await;
    assert_eq!(breakers.evict_idle(), 1);
    assert!(breakers.get(&key).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_does_not_pin_its_key() {
    let (breakers, mut svc) = keyed_calls(16, 600 * SECOND);
    let key = "cancelled".to_owned();
    let hanging = svc.ready().await.unwrap().call(Call::hanging(&key));
    // Polled, then given up on by a timeout, which drops it.
    let timed_out = tokio::time::timeout(SECOND, hanging).await;
    assert!(timed_out.is_err(), "the backend never answers");
    flood(&mut svc, "other", 16).await;
    assert!(
        breakers.get(&key).is_none(),
        "evicted as least recently used: the dropped call pins nothing"
    );
    // The same, with a call still pending: it is kept.
    let hanging = svc.ready().await.unwrap().call(Call::hanging(&key));
    flood(&mut svc, "more", 32).await;
    assert!(
        breakers.get(&key).is_some(),
        "pinned while the call is pending"
    );
    drop(hanging);
    flood(&mut svc, "last", 16).await;
    assert!(breakers.get(&key).is_none(), "unpinned once it is dropped");
}

#[test]
fn threads_flooding_the_map_lose_no_trip_of_a_call_in_flight() {
    let config = builder()
        .consecutive_failures(1)
        .open_duration(3_600 * SECOND)
        .build()
        .unwrap();
    let breakers = KeyedCircuitBreakers::<String>::builder(config)
        .max_keys(16)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let breakers = &breakers;
            scope.spawn(move || {
                for round in 0..500 {
                    let sick = format!("sick-{thread}-{round}");
                    let permit = breakers.try_acquire(&sick).expect("a new key is closed");
                    // 20 new keys from this thread, more from the others, while the
                    // sick key's call is in flight.
                    for i in 0..20 {
                        let healthy = format!("healthy-{thread}-{round}-{i}");
                        breakers.try_acquire(&healthy).unwrap().success();
                    }
                    permit.failure();
                    let kept = breakers.get(&sick).expect("the tripped breaker is kept");
                    assert_eq!(kept.state(), State::Open, "{sick}");
                    breakers.remove(&sick);
                }
            });
        }
    });
    assert!(breakers.len() <= 16, "{} kept", breakers.len());
    assert_eq!(breakers.overflows(), 0);
}
