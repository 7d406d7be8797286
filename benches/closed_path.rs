//! Per-call cost of the breaker on its hot paths, next to a bare `service_fn`.
//!
//! Run: `cargo bench --bench closed_path` (add `-- --quick` for a fast pass).
//! Each scenario checks its outcome so an accidental trip fails the bench.

use std::task::Context;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tower::{service_fn, Layer};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, Error, State};

#[path = "support/driver.rs"]
mod driver;

use driver::{call_once, call_once_moved, echo};

fn bench(c: &mut Criterion) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    c.bench_function("baseline/service_fn", |b| {
        let mut svc = service_fn(echo);
        b.iter(|| black_box(call_once(&mut svc, &mut cx, black_box(1)).unwrap()))
    });

    c.bench_function("breaker/closed_success", |b| {
        let layer = CircuitBreakerLayer::new(Config::default());
        let mut svc = layer.layer(service_fn(echo));
        b.iter(|| black_box(call_once(&mut svc, &mut cx, black_box(1)).unwrap()));
        assert_eq!(layer.breaker().state(), State::Closed);
        assert_eq!(layer.breaker().metrics().failures, 0);
    });

    // The same two calls with the future moved by value before its poll: the copy of
    // a freshly written future stalls store-to-load forwarding, which a caller that
    // moves futures pays whatever the middleware.
    c.bench_function("baseline/service_fn_moved", |b| {
        let mut svc = service_fn(echo);
        b.iter(|| black_box(call_once_moved(&mut svc, &mut cx, black_box(1)).unwrap()))
    });

    c.bench_function("breaker/closed_success_moved", |b| {
        let layer = CircuitBreakerLayer::new(Config::default());
        let mut svc = layer.layer(service_fn(echo));
        b.iter(|| black_box(call_once_moved(&mut svc, &mut cx, black_box(1)).unwrap()));
        assert_eq!(layer.breaker().state(), State::Closed);
        assert_eq!(layer.breaker().metrics().failures, 0);
    });

    c.bench_function("breaker/open_rejection", |b| {
        // Tripped by one failure and open for an hour: each rejection reads the clock.
        let config = Config::builder()
            .consecutive_failures(1)
            .open_duration(Duration::from_secs(3600))
            .build()
            .expect("valid config");
        let layer = CircuitBreakerLayer::new(config);
        layer.breaker().try_acquire().expect("closed").failure();
        let mut svc = layer.layer(service_fn(echo));
        b.iter(|| {
            let rejected = call_once(&mut svc, &mut cx, black_box(1));
            assert!(matches!(rejected, Err(Error::Open(_))));
        });
        assert_eq!(layer.breaker().state(), State::Open);
        assert_eq!(layer.breaker().metrics().successes, 0);
    });

    c.bench_function("breaker/forced_open_rejection", |b| {
        let layer = CircuitBreakerLayer::new(Config::default());
        layer.breaker().force_open();
        let mut svc = layer.layer(service_fn(echo));
        b.iter(|| {
            let rejected = call_once(&mut svc, &mut cx, black_box(1));
            assert!(matches!(rejected, Err(Error::Open(_))));
        });
        assert_eq!(layer.breaker().metrics().successes, 0);
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
