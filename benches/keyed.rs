//! Per-call cost of a keyed breaker (lookup of a known key plus the closed path) as the
//! number of keys grows, next to a single breaker.
//!
//! Two access patterns tell work from memory apart:
//! - `keyed/hot_key/N`: one key called over and over while N keys are kept. The lookup
//!   is O(1), so this must stay flat.
//! - `keyed/closed_success/N`: calls cycle through N keys, so every call finds a key
//!   used N calls ago. Once N breakers outgrow the caches this pays cache misses; the
//!   same walk over a plain sharded map of per-key counters (`keyed/plain_map/N`)
//!   shows how much of that any keyed map pays.
//!
//! Run: `cargo bench --bench keyed` (add `-- --quick` for a fast pass).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::task::Context;

use std::convert::Infallible;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use tower::{service_fn, Layer, Service};
use tower_circuit_breaker::{
    CircuitBreakerLayer, Config, Error, KeyedCircuitBreakerLayer, KeyedCircuitBreakers,
};

#[path = "support/driver.rs"]
mod driver;

use driver::{call_once, echo};

fn bench(c: &mut Criterion) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    c.bench_function("single/closed_success", |b| {
        let mut svc = CircuitBreakerLayer::new(Config::default()).layer(service_fn(echo));
        b.iter(|| black_box(call_once(&mut svc, &mut cx, black_box(1)).unwrap()))
    });

    const KEYS: [u64; 4] = [1, 100, 1_000, 10_000];

    // Calls cycle through `keys` distinct keys, so every key is hit in turn.
    let mut group = c.benchmark_group("keyed/closed_success");
    for keys in KEYS {
        let (breakers, mut svc) = keyed_service(keys);
        let mut request = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| {
                request = request.wrapping_add(1);
                black_box(call_once(&mut svc, &mut cx, request).unwrap())
            })
        });
        check_kept(&breakers, keys, request);
    }
    group.finish();

    // One key, called over and over, among `keys` kept ones.
    let mut group = c.benchmark_group("keyed/hot_key");
    for keys in KEYS {
        let (breakers, mut svc) = keyed_service(keys);
        for request in 0..keys {
            call_once(&mut svc, &mut cx, request).unwrap();
        }
        let mut calls = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| {
                calls += 1;
                black_box(call_once(&mut svc, &mut cx, black_box(keys)).unwrap())
            })
        });
        check_kept(&breakers, keys, keys);
        if calls > 0 {
            let hot = breakers.get(&0).expect("the hot key is kept");
            assert_eq!(
                hot.metrics().successes,
                calls + 1,
                "the hot key took every call"
            );
        }
    }
    group.finish();

    // The same walk over a plain sharded map of per-key counters: a lookup and one
    // shared-memory write per call, the least a keyed breaker can do.
    let mut group = c.benchmark_group("keyed/plain_map");
    for keys in KEYS {
        let map = PlainMap::new(keys);
        let mut request = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| {
                request = request.wrapping_add(1);
                black_box(map.hit(request % keys))
            })
        });
        if request > 0 {
            assert_eq!(map.total(), request, "every call found its key");
        }
    }
    group.finish();
}

/// A keyed breaker over `echo`, keyed by `request % keys`, with room for every key;
/// and its map of breakers.
fn keyed_service(
    keys: u64,
) -> (
    KeyedCircuitBreakers<u64>,
    impl Service<u64, Response = u64, Error = Error<Infallible>>,
) {
    let breakers = KeyedCircuitBreakers::builder(Config::default())
        .max_keys(100_000) // room for uneven shards: nothing is evicted
        .build()
        .expect("valid bounds");
    let layer = KeyedCircuitBreakerLayer::with_breakers(breakers.clone(), move |request: &u64| {
        request % keys
    });
    (breakers, layer.layer(service_fn(echo)))
}

/// Every key called so far kept its breaker; nothing overflowed. With a name filter,
/// criterion skips a scenario: nothing ran, nothing to check.
fn check_kept(breakers: &KeyedCircuitBreakers<u64>, keys: u64, calls: u64) {
    if calls > 0 {
        assert_eq!(
            breakers.len() as u64,
            keys.min(calls),
            "every key kept its breaker"
        );
        assert_eq!(breakers.overflows(), 0);
    }
}

/// 64 shards of `RwLock<HashMap<u64, Arc<AtomicU64>>>`, hashed like the keyed breakers.
struct PlainMap {
    shards: Vec<RwLock<HashMap<u64, Arc<AtomicU64>>>>,
    hasher: RandomState,
}

impl PlainMap {
    fn new(keys: u64) -> PlainMap {
        let map = PlainMap {
            shards: (0..64).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        };
        for key in 0..keys {
            map.shard(key).write().unwrap().insert(key, Arc::default());
        }
        map
    }

    fn shard(&self, key: u64) -> &RwLock<HashMap<u64, Arc<AtomicU64>>> {
        &self.shards[(self.hasher.hash_one(key) >> 32) as usize & 63]
    }

    #[inline(always)]
    fn hit(&self, key: u64) -> u64 {
        let shard = self.shard(key).read().unwrap();
        shard
            .get(&key)
            .expect("every key is in")
            .fetch_add(1, Relaxed)
    }

    fn total(&self) -> u64 {
        let shards = self.shards.iter().map(|shard| shard.read().unwrap());
        shards
            .map(|shard| shard.values().map(|n| n.load(Relaxed)).sum::<u64>())
            .sum()
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
