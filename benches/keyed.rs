//! Per-call cost of a keyed breaker (lookup of a known key plus the closed path) as the
//! number of keys grows, next to a single breaker.
//!
//! Run: `cargo bench --bench keyed` (add `-- --quick` for a fast pass).

use std::task::Context;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use tower::{service_fn, Layer};
use tower_circuit_breaker::{
    CircuitBreakerLayer, Config, KeyedCircuitBreakerLayer, KeyedCircuitBreakers,
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

    // Calls cycle through `keys` distinct keys, so every key is hit in turn: the cost
    // per call must stay flat as the number of keys grows (O(1) lookup, no global lock).
    let mut group = c.benchmark_group("keyed/closed_success");
    for keys in [1u64, 100, 1_000, 10_000] {
        let breakers = KeyedCircuitBreakers::builder(Config::default())
            .max_keys(100_000) // room for uneven shards: nothing is evicted
            .build()
            .expect("valid bounds");
        let layer =
            KeyedCircuitBreakerLayer::with_breakers(breakers, move |request: &u64| request % keys);
        let mut svc = layer.layer(service_fn(echo));
        let mut request = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| {
                request = request.wrapping_add(1);
                black_box(call_once(&mut svc, &mut cx, request).unwrap())
            })
        });
        // With a name filter, criterion skips the scenario: nothing ran, nothing to check.
        if request > 0 {
            let expected = keys.min(request);
            assert_eq!(
                layer.breakers().len() as u64,
                expected,
                "every key kept its breaker"
            );
            assert_eq!(layer.breakers().overflows(), 0);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
