//! Soak: two threads make 1M calls each through one breaker against a backend that
//! flips between healthy and failing, dropping some calls unfinished. Afterwards the
//! metrics must add up exactly, no probe permit may be held, memory must be flat, and
//! the breaker must still recover.
//!
//! The breaker runs on the real clock with microsecond durations so it cycles through
//! open / half-open / closed many times; the assertions do not depend on timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tower::{service_fn, Layer, Service};
use tower_circuit_breaker::{
    CircuitBreakerLayer, CircuitBreakerService, Config, Error, Outcome, State,
};

struct LiveBytes;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: delegates every operation to the system allocator unchanged; it only keeps a
// running total of live bytes.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: LiveBytes = LiveBytes;

const CALLS_PER_THREAD: u64 = 1_000_000;

/// Shared backend: healthy or failing, flipped by the test.
#[derive(Clone)]
struct Backend {
    failing: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Down;

impl Backend {
    fn call(&self, request: u64) -> Ready<Result<u64, Down>> {
        ready(if self.failing.load(Relaxed) {
            Err(Down)
        } else {
            Ok(request)
        })
    }
}

type Svc = CircuitBreakerService<
    tower::util::ServiceFn<Box<dyn FnMut(u64) -> Ready<Result<u64, Down>> + Send>>,
>;

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    ok: u64,
    failed: u64,
    rejected: u64,
    dropped: u64,
}

fn drive(svc: &mut Svc, calls: u64, seed: u64, tally: &mut Tally) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut rng = seed;
    for i in 0..calls {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        let future = svc.call(i);
        if rng % 13 == 0 {
            drop(future); // cancelled: ignored if admitted, nothing if rejected
            tally.dropped += 1;
            continue;
        }
        match future.now_or_never().expect("ready backend") {
            Ok(_) => tally.ok += 1,
            Err(Error::Inner(Down)) => tally.failed += 1,
            Err(Error::Open(_)) => tally.rejected += 1,
        }
    }
}

#[test]
fn two_threads_a_million_calls_each_add_up_exactly() {
    let config = Config::builder()
        .name("soak")
        .consecutive_failures(5)
        .open_duration(Duration::from_micros(50))
        .half_open_permits(2)
        .half_open_successes(3)
        .half_open_max_wait(Duration::from_millis(1))
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::new(config);
    let breaker = layer.breaker().clone();
    let backend = Backend {
        failing: Arc::new(AtomicBool::new(false)),
    };
    let make_service = || -> Svc {
        let backend = backend.clone();
        let f: Box<dyn FnMut(u64) -> Ready<Result<u64, Down>> + Send> =
            Box::new(move |request| backend.call(request));
        layer.layer(service_fn(f))
    };

    // Warm up, then take the memory baseline.
    let mut warm = Tally::default();
    drive(&mut make_service(), 10_000, 1, &mut warm);
    let baseline = LIVE_BYTES.load(Relaxed);

    let done = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicU64::new(0));
    let flipper = {
        let (failing, done, flips) = (backend.failing.clone(), done.clone(), flips.clone());
        std::thread::spawn(move || {
            // Flip health as fast as the callers go: roughly every few thousand calls.
            while !done.load(Relaxed) {
                for _ in 0..20_000 {
                    std::hint::spin_loop();
                }
                failing.fetch_xor(true, Relaxed);
                flips.fetch_add(1, Relaxed);
            }
        })
    };
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let (mut svc, barrier) = (make_service(), barrier.clone());
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                barrier.wait();
                drive(&mut svc, CALLS_PER_THREAD, 0x9E37_79B9 + t, &mut tally);
                tally
            })
        })
        .collect();
    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    done.store(true, Relaxed);
    flipper.join().unwrap();

    let mut total = warm;
    for t in &tallies {
        total.ok += t.ok;
        total.failed += t.failed;
        total.rejected += t.rejected;
        total.dropped += t.dropped;
    }
    let m = breaker.metrics();
    assert_eq!(m.calls, 2 * CALLS_PER_THREAD + 10_000);
    assert_eq!(m.successes, total.ok);
    assert_eq!(m.failures, total.failed);
    assert_eq!(m.rejected + m.ignored, total.rejected + total.dropped);
    assert_eq!(m.calls, m.successes + m.failures + m.ignored + m.rejected);
    assert_eq!(m.probes_in_flight, 0, "no probe permit leaked");
    assert!(flips.load(Relaxed) > 10, "the backend must have flipped");
    assert!(m.state_changes > 10, "the breaker must have cycled: {m:?}");
    assert!(
        total.ok > 0 && total.failed > 0 && total.rejected > 0,
        "{total:?}"
    );

    let growth = LIVE_BYTES.load(Relaxed) - baseline;
    assert!(
        growth.abs() < 64 * 1024,
        "live memory grew by {growth} bytes"
    );

    // Not wedged: with a healthy backend, calls close the breaker again.
    backend.failing.store(false, Relaxed);
    let mut svc = make_service();
    let deadline = Instant::now() + Duration::from_secs(5);
    while breaker.state() != State::Closed {
        assert!(
            Instant::now() < deadline,
            "breaker stuck in {}",
            breaker.state()
        );
        let mut tally = Tally::default();
        drive(&mut svc, 1, 7, &mut tally);
    }
    let permit = breaker.try_acquire().expect("closed");
    permit.record(Outcome::Success);
}
