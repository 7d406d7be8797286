//! Per-call cost as the sliding window grows: it must stay flat (O(1) per call).
//!
//! Run: `cargo bench --bench scaling` (add `-- --quick` for a fast pass).
//!
//! Every call goes through a failure-rate rule (50%) over a count window of 10 to
//! 1 000 000 calls, or a 60 s time window of 10 to 3 600 buckets. One call in ten
//! fails, so both the success and the failure side of the window are written; the
//! bench checks afterwards that the breaker never opened and saw exactly that mix.

use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use futures::FutureExt;
use tower::{service_fn, Layer, Service};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, State, Window};

/// The inner service's error.
#[derive(Debug)]
struct Fail;

/// Fails every request that is a multiple of 10.
fn flaky(request: u64) -> Ready<Result<u64, Fail>> {
    ready(if request % 10 == 0 {
        Err(Fail)
    } else {
        Ok(request)
    })
}

/// One synchronous call: poll_ready with a no-op waker, call, poll the future once.
fn call_once<S>(svc: &mut S, cx: &mut Context<'_>, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(_)) => panic!("bench services are always ready"),
        Poll::Pending => panic!("bench services are always ready"),
    }
    svc.call(request)
        .now_or_never()
        .expect("bench futures complete at once")
}

fn measure(c: &mut Criterion, group: &str, windows: &[(u64, Window)]) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut group = c.benchmark_group(group);
    for &(size, window) in windows {
        let config = Config::builder()
            .failure_rate(0.5)
            .sliding_window(window)
            .build()
            .expect("valid config");
        let layer = CircuitBreakerLayer::new(config);
        let mut svc = layer.layer(service_fn(flaky));
        let mut request = 0u64;
        let (mut ok, mut failed) = (0u64, 0u64);
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                request += 1;
                match call_once(&mut svc, &mut cx, black_box(request)) {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            })
        });
        let metrics = layer.breaker().metrics();
        assert_eq!(
            layer.breaker().state(),
            State::Closed,
            "window {size} tripped"
        );
        assert_eq!(metrics.rejected, 0, "window {size} rejected calls");
        assert_eq!(failed, request / 10, "window {size}: wrong outcome mix");
        assert_eq!(ok + failed, request);
    }
    group.finish();
}

fn count_windows(c: &mut Criterion) {
    let sizes = [10u32, 100, 1_000, 10_000, 100_000, 1_000_000];
    let windows: Vec<_> = sizes
        .iter()
        .map(|&n| (u64::from(n), Window::count(n)))
        .collect();
    measure(c, "count_window_size", &windows);
}

fn time_windows(c: &mut Criterion) {
    let buckets = [10u32, 100, 1_000, 3_600];
    let windows: Vec<_> = buckets
        .iter()
        .map(|&n| {
            let window = Window::time(Duration::from_secs(60)).buckets(n);
            (u64::from(n), window)
        })
        .collect();
    measure(c, "time_window_buckets", &windows);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = count_windows, time_windows
}
criterion_main!(benches);
