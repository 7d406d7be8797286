//! Per-call cost of a keyed breaker (lookup of a known key plus the closed path), next
//! to a single breaker.
//!
//! Run: `cargo bench --bench keyed` (add `-- --quick` for a fast pass).

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use futures::FutureExt;
use tower::{service_fn, Layer, Service};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, KeyedCircuitBreakerLayer};

fn call_once<S>(svc: &mut S, cx: &mut Context<'_>, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => panic!("bench services are always ready"),
    }
    svc.call(request)
        .now_or_never()
        .expect("bench futures complete at once")
}

fn echo(request: u64) -> Ready<Result<u64, Infallible>> {
    ready(Ok(request))
}

fn bench(c: &mut Criterion) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    c.bench_function("single/closed_success", |b| {
        let mut svc = CircuitBreakerLayer::new(Config::default()).layer(service_fn(echo));
        b.iter(|| black_box(call_once(&mut svc, &mut cx, black_box(1)).unwrap()))
    });

    c.bench_function("keyed/closed_success_100_keys", |b| {
        let layer = KeyedCircuitBreakerLayer::new(Config::default(), |request: &u64| request % 100);
        let mut svc = layer.layer(service_fn(echo));
        let mut request = 0u64;
        b.iter(|| {
            request = request.wrapping_add(1);
            black_box(call_once(&mut svc, &mut cx, request).unwrap())
        });
        assert!(layer.breakers().len() <= 100); // this closure may run once per sample
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
