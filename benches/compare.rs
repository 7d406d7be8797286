//! Per-call cost of `tower-circuit-breaker` next to a bare `service_fn` and three peers
//! (`tower-resilience-circuitbreaker`, `failsafe`, `recloser`), all in one run.
//!
//! Run: `cargo bench --bench compare` (add `-- --quick` for a fast pass).
//! Results and how to read them: `benches/README.md`.
//!
//! - Every scenario runs under two drivers, back to back:
//!   - `<scenario>/<breaker>`: synchronous, like `closed_path.rs`: `poll_ready` with a
//!     no-op waker, `call`, one poll of the future pinned where it was returned (as an
//!     executor polls in place; `closed_path.rs` also measures the cost of moving the
//!     future first). The compiler may fuse the three into the measuring loop.
//!   - `user/<scenario>/<breaker>`: shaped like user code: a generic, not-inlined
//!     `async fn` doing `svc.ready().await?; svc.call(x).await` (`user_call`), awaited in
//!     a loop inside a current-thread Tokio runtime, one `block_on` per measured batch.
//!     The 2-thread rows give each thread its own current-thread runtime.
//! - Before each measurement, 10 000 calls run under a counting global allocator and
//!   the bench prints `allocs/call` for that scenario on stderr.
//! - Every scenario tallies its outcomes (ok / inner failure / rejection) and checks them
//!   and the breaker's state afterwards, so a breaker that tripped (or closed) by
//!   accident fails the bench loudly.
//! - `failsafe` and `recloser` are not Tower middleware; each gets a minimal,
//!   allocation-free `Service` wrapper below that uses its futures API.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{ready, Future, Ready};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures::task::noop_waker_ref;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_circuit_breaker as tcb;
use tower_resilience_circuitbreaker as trc;

// ---------------------------------------------------------------------------------------
// Counting allocator: counts only while `COUNTING` is set, so that the measured runs do
// not pay for a shared atomic increment on every allocation.

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn note_allocation() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` unchanged; counting touches no memory that
// the allocator hands out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Calls run under the counting allocator before each measurement.
const ALLOC_CALLS: u64 = 10_000;
/// Uncounted calls before counting (first-use set-up is not a per-call cost).
const WARM_UP_CALLS: u64 = 1_000;

/// Allocations made while `f` runs (on any thread).
fn count_allocations(f: impl FnOnce()) -> u64 {
    start_counting();
    f();
    stop_counting()
}

fn start_counting() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
}

/// Allocations since `start_counting`.
fn stop_counting() -> u64 {
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn report_allocations(id: &str, allocations: u64, calls: u64) {
    eprintln!(
        "{id}: allocs/call = {:.2} ({allocations} allocations in {calls} calls)",
        allocations as f64 / calls as f64
    );
}

// ---------------------------------------------------------------------------------------
// Inner services and outcome bookkeeping.

/// The inner services' error: zero-sized, so failures allocate nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fail;

/// Always succeeds.
fn echo(request: u64) -> Ready<Result<u64, Fail>> {
    ready(Ok(request))
}

/// Fails every request that is a multiple of 10 (request 0 always fails).
fn flaky(request: u64) -> Ready<Result<u64, Fail>> {
    ready(if request % 10 == 0 {
        Err(Fail)
    } else {
        Ok(request)
    })
}

/// A request that `flaky` fails.
const FAILING: u64 = 0;
/// A request that both inner services answer with success.
const SUCCEEDING: u64 = 1;

/// Whether an error is the breaker's fast rejection (vs. the inner service's error).
trait Verdict {
    fn is_rejection(&self) -> bool;
}

impl Verdict for Fail {
    fn is_rejection(&self) -> bool {
        false
    }
}

impl<E> Verdict for tcb::Error<E> {
    fn is_rejection(&self) -> bool {
        matches!(self, tcb::Error::Open(_))
    }
}

impl<E> Verdict for trc::CircuitBreakerError<E> {
    fn is_rejection(&self) -> bool {
        matches!(self, trc::CircuitBreakerError::OpenCircuit)
    }
}

impl<E> Verdict for failsafe::Error<E> {
    fn is_rejection(&self) -> bool {
        matches!(self, failsafe::Error::Rejected)
    }
}

impl<E> Verdict for recloser::Error<E> {
    fn is_rejection(&self) -> bool {
        matches!(self, recloser::Error::Rejected)
    }
}

/// Outcomes seen by one scenario.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    ok: u64,
    failed: u64,
    rejected: u64,
}

impl Tally {
    #[inline(always)]
    fn add<E: Verdict>(&mut self, result: Result<u64, E>) {
        match result {
            Ok(_) => self.ok += 1,
            Err(e) if e.is_rejection() => self.rejected += 1,
            Err(_) => self.failed += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.rejected += other.rejected;
    }

    fn calls(&self) -> u64 {
        self.ok + self.failed + self.rejected
    }

    fn assert_all_ok(&self, id: &str) {
        assert!(self.ok > 0, "{id}: no call measured: {self:?}");
        assert_eq!(
            (self.failed, self.rejected),
            (0, 0),
            "{id}: expected only successes: {self:?}"
        );
    }

    fn assert_all_rejected(&self, id: &str) {
        assert!(self.rejected > 0, "{id}: no call measured: {self:?}");
        assert_eq!(
            (self.ok, self.failed),
            (0, 0),
            "{id}: expected only rejections: {self:?}"
        );
    }

    /// Requests 1, 2, 3, ... through `flaky`: exactly every 10th failed, none rejected.
    fn assert_one_in_ten_failed(&self, id: &str) {
        assert_eq!(
            self.rejected, 0,
            "{id}: the breaker rejected calls: {self:?}"
        );
        assert!(self.failed > 0, "{id}: no failure measured: {self:?}");
        assert_eq!(
            self.failed,
            self.calls() / 10,
            "{id}: expected every 10th call to fail: {self:?}"
        );
    }
}

impl Tally {
    /// `workers` workers each sent requests 1, 2, 3, ... through `flaky`: every 10th of
    /// each worker's calls failed (so the total is off by at most one per worker),
    /// none rejected.
    fn assert_one_in_ten_failed_per_worker(&self, id: &str, workers: u64) {
        assert_eq!(
            self.rejected, 0,
            "{id}: the breaker rejected calls: {self:?}"
        );
        assert!(self.failed > 0, "{id}: no failure measured: {self:?}");
        let most = self.calls() / 10;
        assert!(
            (most.saturating_sub(workers)..=most).contains(&self.failed),
            "{id}: expected every 10th call of each worker to fail: {self:?}"
        );
    }
}

/// Counts requests 1, 2, 3, ... for the 10%-failure scenarios.
fn counter() -> impl FnMut() -> u64 {
    let mut next = 0;
    move || {
        next += 1;
        next
    }
}

// ---------------------------------------------------------------------------------------
// Drivers.

/// How a scenario drives each service. Every scenario runs with both; the user-shaped
/// rows are named `user/<scenario>/<breaker>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// `call_once` / `call_spin`: synchronous polls with a no-op waker, inlined into the
    /// measuring loop (the compiler may fuse `poll_ready`, `call` and `poll`).
    Poll,
    /// `user_call`: a generic, not-inlined `async fn` doing `ready().await` then
    /// `call().await`, awaited in a loop inside a current-thread Tokio runtime
    /// (one `block_on` per measured batch, not per call).
    User,
}

impl Driver {
    /// The benchmark (or group) id under this driver.
    fn id(self, id: &str) -> String {
        match self {
            Driver::Poll => id.to_owned(),
            Driver::User => format!("user/{id}"),
        }
    }
}

/// One call as user code makes it: generic over the service, not inlined into the
/// caller, `ready().await?` then `call(request).await`.
#[inline(never)]
async fn user_call<S>(svc: &mut S, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    svc.ready().await?;
    svc.call(request).await
}

/// The runtime of the user-shaped driver: what `#[tokio::main(flavor = "current_thread")]`
/// builds.
fn user_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// One synchronous call: poll_ready with a no-op waker, call, poll the future once
/// where it was pinned, as an executor polls a task's future in place.
#[inline(always)]
fn call_once<S>(svc: &mut S, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    let mut cx = Context::from_waker(noop_waker_ref());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => panic!("bench services are always ready"),
    }
    match pin!(svc.call(request)).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("bench futures complete at once"),
    }
}

/// One call that tolerates `Pending` (lock contention between threads): it yields the
/// thread and polls again until the call completes.
#[inline(always)]
fn call_spin<S>(svc: &mut S, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    let mut cx = Context::from_waker(noop_waker_ref());
    loop {
        match svc.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => break,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => std::thread::yield_now(),
        }
    }
    let mut future = pin!(svc.call(request));
    loop {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            return result;
        }
        std::thread::yield_now();
    }
}

/// Calls `request` until the breaker rejects one; `false` if none of 1 000 calls was
/// rejected.
fn try_trip<S>(svc: &mut S, request: u64) -> bool
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
{
    (0..1_000).any(|_| matches!(call_once(svc, request), Err(e) if e.is_rejection()))
}

/// Trips the breaker with failing calls.
fn trip<S>(svc: &mut S)
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
{
    assert!(try_trip(svc, FAILING), "the breaker did not open");
}

/// A breaker from `make`, tripped, then moved to half-open by one successful probe once
/// its (short) open duration has passed. If the open duration already passed between
/// the tripping call and the next one (the thread was descheduled), the breaker never
/// shows a rejection; that attempt is thrown away and a fresh breaker is tried.
fn arm_half_open<S>(mut make: impl FnMut() -> S) -> S
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
{
    for _ in 0..10 {
        let mut svc = make();
        if try_trip(&mut svc, FAILING) {
            until_admitted(&mut svc);
            return svc;
        }
    }
    panic!("could not trip a breaker in 10 attempts");
}

/// Calls `SUCCEEDING` until one is admitted and succeeds (at most 1 s).
fn until_admitted<S>(svc: &mut S)
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
{
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match call_once(svc, SUCCEEDING) {
            Ok(_) => return,
            Err(e) if e.is_rejection() => std::hint::spin_loop(),
            Err(_) => panic!("the succeeding request failed"),
        }
    }
    panic!("the breaker did not admit a call within 1 s");
}

/// Counts allocations over `ALLOC_CALLS` calls, then measures with criterion.
fn bench_single<S, R>(
    driver: Driver,
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    svc: &mut S,
    request: R,
) -> Tally
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
    R: FnMut() -> u64,
{
    match driver {
        Driver::Poll => bench_single_poll(group, id, svc, request),
        Driver::User => bench_single_user(group, id, svc, request),
    }
}

fn bench_single_poll<S, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    svc: &mut S,
    mut request: R,
) -> Tally
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
    R: FnMut() -> u64,
{
    let mut tally = Tally::default();
    for _ in 0..WARM_UP_CALLS {
        tally.add(call_once(svc, request()));
    }
    let allocations = count_allocations(|| {
        for _ in 0..ALLOC_CALLS {
            tally.add(call_once(svc, request()));
        }
    });
    report_allocations(id, allocations, ALLOC_CALLS);
    let name = id.rsplit('/').next().unwrap_or(id);
    group.bench_function(name, |b| {
        b.iter(|| tally.add(black_box(call_once(svc, black_box(request())))))
    });
    tally
}

/// `bench_single` with the user-shaped driver: every call is `user_call(..).await`, and
/// each measured batch is one `block_on` of a loop over them.
fn bench_single_user<S, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    svc: &mut S,
    mut request: R,
) -> Tally
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
    R: FnMut() -> u64,
{
    let rt = user_runtime();
    let mut tally = Tally::default();
    let allocations = rt.block_on(async {
        for _ in 0..WARM_UP_CALLS {
            tally.add(user_call(svc, request()).await);
        }
        start_counting();
        for _ in 0..ALLOC_CALLS {
            tally.add(user_call(svc, request()).await);
        }
        stop_counting()
    });
    report_allocations(id, allocations, ALLOC_CALLS);
    let name = id.rsplit('/').next().unwrap_or(id);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tally.add(black_box(user_call(svc, black_box(request())).await));
                }
                start.elapsed()
            })
        })
    });
    tally
}

/// Calls per armed breaker in the half-open scenario: below every configured number of
/// probes that would close it.
const HALF_OPEN_BATCH: u64 = 50_000;

/// Measures successful calls on breakers that `arm` put in half-open state. Each batch of
/// at most `HALF_OPEN_BATCH` calls gets a freshly armed breaker (arming is not timed);
/// `check` runs after every batch.
fn bench_half_open<S, A, K>(
    driver: Driver,
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut arm: A,
    mut check: K,
) -> Tally
where
    S: Service<u64, Response = u64>,
    S::Error: Verdict,
    A: FnMut() -> S,
    K: FnMut(&S),
{
    let mut tally = Tally::default();
    let rt = user_runtime();
    let mut svc = arm();
    check(&svc);
    let allocations = match driver {
        Driver::Poll => {
            for _ in 0..WARM_UP_CALLS {
                tally.add(call_once(&mut svc, SUCCEEDING));
            }
            count_allocations(|| {
                for _ in 0..ALLOC_CALLS {
                    tally.add(call_once(&mut svc, SUCCEEDING));
                }
            })
        }
        Driver::User => rt.block_on(async {
            for _ in 0..WARM_UP_CALLS {
                tally.add(user_call(&mut svc, SUCCEEDING).await);
            }
            start_counting();
            for _ in 0..ALLOC_CALLS {
                tally.add(user_call(&mut svc, SUCCEEDING).await);
            }
            stop_counting()
        }),
    };
    check(&svc);
    drop(svc);
    report_allocations(id, allocations, ALLOC_CALLS);
    let name = id.rsplit('/').next().unwrap_or(id);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let mut spent = Duration::ZERO;
            while left > 0 {
                let n = left.min(HALF_OPEN_BATCH);
                let mut svc = arm();
                spent += match driver {
                    Driver::Poll => {
                        let start = Instant::now();
                        for _ in 0..n {
                            tally.add(black_box(call_once(&mut svc, black_box(SUCCEEDING))));
                        }
                        start.elapsed()
                    }
                    Driver::User => rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..n {
                            tally.add(black_box(user_call(&mut svc, black_box(SUCCEEDING)).await));
                        }
                        start.elapsed()
                    }),
                };
                check(&svc);
                left -= n;
            }
            spent
        })
    });
    tally
}

/// What each worker of a [`Pool`] sends.
#[derive(Debug, Clone, Copy)]
enum Requests {
    /// `SUCCEEDING`, always.
    Succeeding,
    /// 1, 2, 3, ... (its own count per worker): through `flaky`, every 10th fails.
    OneInTenFails,
}

/// Worker threads that each drive their own clone of one service.
struct Pool {
    shared: Arc<PoolShared>,
    workers: Vec<JoinHandle<()>>,
}

struct PoolShared {
    calls_per_thread: AtomicU64,
    stop: AtomicBool,
    start: Barrier,
    done: Barrier,
    /// (start, end) of each worker's last round; capacity reserved, so no allocation.
    spans: Mutex<Vec<(Instant, Instant)>>,
    tally: Mutex<Tally>,
}

impl Pool {
    fn new<S>(driver: Driver, svc: &S, threads: usize, requests: Requests) -> Pool
    where
        S: Service<u64, Response = u64> + Clone + Send + 'static,
        S::Error: Verdict,
    {
        let shared = Arc::new(PoolShared {
            calls_per_thread: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            start: Barrier::new(threads + 1),
            done: Barrier::new(threads + 1),
            spans: Mutex::new(Vec::with_capacity(threads)),
            tally: Mutex::new(Tally::default()),
        });
        let workers = (0..threads)
            .map(|_| {
                let mut svc = svc.clone();
                let shared = Arc::clone(&shared);
                let mut next = counter();
                let mut request = move || match requests {
                    Requests::Succeeding => SUCCEEDING,
                    Requests::OneInTenFails => next(),
                };
                std::thread::spawn(move || {
                    // The user-shaped driver: one current-thread runtime per worker,
                    // one `block_on` per round.
                    let rt = (driver == Driver::User).then(user_runtime);
                    loop {
                        shared.start.wait();
                        if shared.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let n = shared.calls_per_thread.load(Ordering::Acquire);
                        let mut tally = Tally::default();
                        let span = match &rt {
                            None => {
                                let begin = Instant::now();
                                for _ in 0..n {
                                    let result = call_spin(&mut svc, black_box(request()));
                                    tally.add(black_box(result));
                                }
                                (begin, Instant::now())
                            }
                            Some(rt) => rt.block_on(async {
                                let begin = Instant::now();
                                for _ in 0..n {
                                    let result = user_call(&mut svc, black_box(request())).await;
                                    tally.add(black_box(result));
                                }
                                (begin, Instant::now())
                            }),
                        };
                        shared.spans.lock().unwrap().push(span);
                        shared.tally.lock().unwrap().merge(tally);
                        shared.done.wait();
                    }
                })
            })
            .collect();
        Pool { shared, workers }
    }

    /// Every worker makes `calls_per_thread` calls; returns the wall time from the first
    /// worker's start to the last worker's end.
    fn round(&self, calls_per_thread: u64) -> Duration {
        self.shared.spans.lock().unwrap().clear();
        self.shared
            .calls_per_thread
            .store(calls_per_thread, Ordering::Release);
        self.shared.start.wait();
        self.shared.done.wait();
        let spans = self.shared.spans.lock().unwrap();
        let first = spans.iter().map(|s| s.0).min().expect("a worker ran");
        let last = spans.iter().map(|s| s.1).max().expect("a worker ran");
        last - first
    }

    fn tally(&self) -> Tally {
        *self.shared.tally.lock().unwrap()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.start.wait();
        for worker in self.workers.drain(..) {
            worker.join().expect("a worker panicked");
        }
    }
}

/// `threads` threads share one breaker, each through its own clone of `svc`. Criterion
/// sees total wall time / total calls across all threads.
fn bench_threads<S>(
    driver: Driver,
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    svc: &S,
    threads: usize,
    requests: Requests,
) -> Tally
where
    S: Service<u64, Response = u64> + Clone + Send + 'static,
    S::Error: Verdict,
{
    let pool = Pool::new(driver, svc, threads, requests);
    pool.round(WARM_UP_CALLS);
    let allocations = count_allocations(|| {
        pool.round(ALLOC_CALLS);
    });
    report_allocations(id, allocations, ALLOC_CALLS * threads as u64);
    let name = id.rsplit('/').next().unwrap_or(id);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| pool.round(iters) / threads as u32)
    });
    let tally = pool.tally();
    drop(pool);
    tally
}

// ---------------------------------------------------------------------------------------
// Minimal Tower adapters for the two peers that are not Tower middleware. Both check
// admission when their future is first polled and hold an `Arc` clone of the breaker in
// the future; neither allocates per call.

/// `failsafe` behind a Tower `Service`.
struct FailsafeService<S, P> {
    inner: S,
    breaker: failsafe::StateMachine<P, ()>,
}

impl<S: Clone, P> Clone for FailsafeService<S, P> {
    fn clone(&self) -> Self {
        FailsafeService {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
        }
    }
}

impl<S, P, Req> Service<Req> for FailsafeService<S, P>
where
    S: Service<Req>,
    P: failsafe::FailurePolicy + Send + Sync,
{
    type Response = S::Response;
    type Error = failsafe::Error<S::Error>;
    type Future = failsafe::futures::ResponseFuture<S::Future, P, (), failsafe::Any>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(failsafe::Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        failsafe::futures::CircuitBreaker::call(&self.breaker, self.inner.call(request))
    }
}

fn failsafe_service<S, P>(inner: S, policy: P) -> FailsafeService<S, P>
where
    P: failsafe::FailurePolicy,
{
    FailsafeService {
        inner,
        breaker: failsafe::Config::new().failure_policy(policy).build(),
    }
}

fn failsafe_default<S>(inner: S) -> FailsafeService<S, impl failsafe::FailurePolicy + Send + Sync> {
    FailsafeService {
        inner,
        breaker: failsafe::Config::new().build(),
    }
}

/// failsafe exposes its state only through `Debug` ("closed", "open", "half_open").
fn failsafe_state<S, P>(svc: &FailsafeService<S, P>) -> String
where
    P: failsafe::FailurePolicy,
{
    format!("{:?}", svc.breaker)
}

/// `recloser` behind a Tower `Service`.
#[derive(Clone)]
struct RecloserService<S> {
    inner: S,
    breaker: recloser::AsyncRecloser,
}

impl<S, Req> Service<Req> for RecloserService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = recloser::Error<S::Error>;
    type Future = recloser::RecloserFuture<S::Future, recloser::AnyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(recloser::Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}

fn recloser_service<S>(inner: S, recloser: recloser::Recloser) -> RecloserService<S> {
    RecloserService {
        inner,
        breaker: recloser.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Configurations.

const OURS: &str = "tower-circuit-breaker";
const TOWER_RESILIENCE: &str = "tower-resilience";
const FAILSAFE: &str = "failsafe";
const RECLOSER: &str = "recloser";

/// The time window of the time-window scenario, for every crate that has one.
const TIME_WINDOW: Duration = Duration::from_secs(1);
/// Open duration used to arm the half-open scenario: short, so arming is quick.
const SHORT_OPEN: Duration = Duration::from_millis(1);
/// Open duration of the open scenarios: long enough never to elapse during a run.
const LONG_OPEN: Duration = Duration::from_secs(3_600);

fn ours(config: tcb::Config) -> tcb::CircuitBreakerLayer {
    tcb::CircuitBreakerLayer::new(config)
}

fn ours_rate_over(window: tcb::Window) -> tcb::Config {
    tcb::Config::builder()
        .failure_rate(0.5)
        .sliding_window(window)
        .build()
        .expect("valid config")
}

fn assert_ours<S>(id: &str, svc: &tcb::CircuitBreakerService<S>, state: tcb::State) {
    assert_eq!(svc.breaker().state(), state, "{id}: wrong breaker state");
}

fn assert_trc<S, C>(id: &str, svc: &trc::CircuitBreaker<S, C>, state: trc::CircuitState) {
    assert_eq!(svc.state_sync(), state, "{id}: wrong breaker state");
}

fn assert_failsafe<S, P>(id: &str, svc: &FailsafeService<S, P>, state: &str)
where
    P: failsafe::FailurePolicy,
{
    let debug = failsafe_state(svc);
    assert!(
        debug.contains(&format!("\"{state}\"")),
        "{id}: expected {state}, got {debug}"
    );
}

// ---------------------------------------------------------------------------------------
// Scenarios.

fn baseline(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("baseline"));
    let id = &d.id("baseline/service_fn");
    let mut svc = service_fn(echo);
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    group.finish();
}

fn closed_success(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("closed_success"));

    let id = &d.id("closed_success/tower-circuit-breaker");
    let mut svc = ours(tcb::Config::default()).layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_ours(id, &svc, tcb::State::Closed);
    let metrics = svc.breaker().metrics();
    assert_eq!((metrics.failures, metrics.rejected), (0, 0), "{id}");

    let id = &d.id("closed_success/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder().build().expect("valid");
    let mut svc = layer.layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_trc(id, &svc, trc::CircuitState::Closed);

    let id = &d.id("closed_success/failsafe");
    let mut svc = failsafe_default(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_failsafe(id, &svc, "closed");

    let id = &d.id("closed_success/recloser");
    let mut svc = recloser_service(service_fn(echo), recloser::Recloser::default());
    // recloser has no state accessor; no rejection means it never opened.
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);

    group.finish();
}

fn closed_ten_percent_failures(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("closed_10pct_failures"));

    // Every crate: open at a 50% failure rate over the last 100 calls (failsafe: its
    // default, a success rate below 80% over 30 s or 5 consecutive failures). One call
    // in ten fails, never two in a row, so none of them may open.
    let id = &d.id("closed_10pct_failures/tower-circuit-breaker");
    let mut svc = ours(ours_rate_over(tcb::Window::count(100))).layer(service_fn(flaky));
    bench_single(d, &mut group, id, &mut svc, counter()).assert_one_in_ten_failed(id);
    assert_ours(id, &svc, tcb::State::Closed);

    let id = &d.id("closed_10pct_failures/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("valid");
    let mut svc = layer.layer(service_fn(flaky));
    bench_single(d, &mut group, id, &mut svc, counter()).assert_one_in_ten_failed(id);
    assert_trc(id, &svc, trc::CircuitState::Closed);

    let id = &d.id("closed_10pct_failures/failsafe");
    let mut svc = failsafe_default(service_fn(flaky));
    bench_single(d, &mut group, id, &mut svc, counter()).assert_one_in_ten_failed(id);
    assert_failsafe(id, &svc, "closed");

    let id = &d.id("closed_10pct_failures/recloser");
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .build();
    let mut svc = recloser_service(service_fn(flaky), recloser);
    bench_single(d, &mut group, id, &mut svc, counter()).assert_one_in_ten_failed(id);

    group.finish();
}

fn open_rejection(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("open_rejection"));

    let id = &d.id("open_rejection/tower-circuit-breaker");
    let config = tcb::Config::builder()
        .consecutive_failures(1)
        .open_duration(LONG_OPEN)
        .build()
        .expect("valid");
    let mut svc = ours(config).layer(service_fn(flaky));
    trip(&mut svc);
    assert_ours(id, &svc, tcb::State::Open);
    let rejected_before = svc.breaker().metrics().rejected;
    let tally = bench_single(d, &mut group, id, &mut svc, || SUCCEEDING);
    tally.assert_all_rejected(id);
    assert_ours(id, &svc, tcb::State::Open);
    let metrics = svc.breaker().metrics();
    assert_eq!(metrics.rejected - rejected_before, tally.rejected, "{id}");
    assert_eq!(metrics.successes, 0, "{id}");

    let id = &d.id("open_rejection/tower-circuit-breaker-forced");
    let layer = ours(tcb::Config::default());
    layer.breaker().force_open();
    let mut svc = layer.layer(service_fn(echo));
    let tally = bench_single(d, &mut group, id, &mut svc, || SUCCEEDING);
    tally.assert_all_rejected(id);
    assert_ours(id, &svc, tcb::State::ForcedOpen);
    assert_eq!(svc.breaker().metrics().rejected, tally.rejected, "{id}");

    let id = &d.id("open_rejection/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .wait_duration_in_open(LONG_OPEN)
        .build()
        .expect("valid");
    let mut svc = layer.layer(service_fn(flaky));
    trip(&mut svc);
    assert_trc(id, &svc, trc::CircuitState::Open);
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_rejected(id);
    assert_trc(id, &svc, trc::CircuitState::Open);

    let id = &d.id("open_rejection/failsafe");
    let policy =
        failsafe::failure_policy::consecutive_failures(1, failsafe::backoff::constant(LONG_OPEN));
    let mut svc = failsafe_service(service_fn(flaky), policy);
    trip(&mut svc);
    assert_failsafe(id, &svc, "open");
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_rejected(id);
    assert_failsafe(id, &svc, "open");

    let id = &d.id("open_rejection/recloser");
    let recloser = recloser::Recloser::custom()
        .closed_len(1)
        .open_wait(LONG_OPEN)
        .build();
    let mut svc = recloser_service(service_fn(flaky), recloser);
    trip(&mut svc);
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_rejected(id);

    group.finish();
}

fn half_open(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("half_open_probe"));

    // Each measured call is one half-open probe, admitted and finished with a success.
    // Every crate is configured so that a batch of successes never closes the breaker;
    // each batch runs on a freshly tripped breaker whose short open duration has passed.
    // failsafe is left out: its first successful half-open call closes the breaker.
    let id = &d.id("half_open_probe/tower-circuit-breaker");
    let make = || {
        let config = tcb::Config::builder()
            .consecutive_failures(1)
            .open_duration(SHORT_OPEN)
            .half_open_permits(1)
            .half_open_successes(tcb::MAX_HALF_OPEN)
            .build()
            .expect("valid");
        ours(config).layer(service_fn(flaky))
    };
    let arm = || arm_half_open(make);
    let check = |svc: &tcb::CircuitBreakerService<_>| {
        assert_ours(id, svc, tcb::State::HalfOpen);
        assert_eq!(svc.breaker().metrics().probes_in_flight, 0, "{id}");
    };
    bench_half_open(d, &mut group, id, arm, check).assert_all_ok(id);

    let id = &d.id("half_open_probe/tower-resilience");
    let make = || {
        let layer = trc::CircuitBreakerLayer::builder()
            .consecutive_failures(1)
            .wait_duration_in_open(SHORT_OPEN)
            .permitted_calls_in_half_open(1 << 20)
            .build()
            .expect("valid");
        layer.layer(service_fn(flaky))
    };
    let arm = || arm_half_open(make);
    let check = |svc: &trc::CircuitBreaker<_, _>| assert_trc(id, svc, trc::CircuitState::HalfOpen);
    bench_half_open(d, &mut group, id, arm, check).assert_all_ok(id);

    // recloser admits every call while half-open and decides once `half_open_len` calls
    // were recorded; a batch stays below that, so it cannot leave half-open. It has no
    // state accessor to check this directly.
    let id = &d.id("half_open_probe/recloser");
    let make = || {
        let recloser = recloser::Recloser::custom()
            .closed_len(1)
            .half_open_len(1 << 17)
            .open_wait(SHORT_OPEN)
            .build();
        recloser_service(service_fn(flaky), recloser)
    };
    let arm = || arm_half_open(make);
    bench_half_open(d, &mut group, id, arm, |_: &RecloserService<_>| {}).assert_all_ok(id);

    group.finish();
}

fn time_window(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("time_window"));

    // A failure-rate rule over a 1 s time window; every call succeeds. recloser has no
    // time window.
    let id = &d.id("time_window/tower-circuit-breaker");
    let mut svc = ours(ours_rate_over(tcb::Window::time(TIME_WINDOW))).layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_ours(id, &svc, tcb::State::Closed);

    let id = &d.id("time_window/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_type(trc::SlidingWindowType::TimeBased)
        .sliding_window_duration(TIME_WINDOW)
        .build()
        .expect("valid");
    let mut svc = layer.layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_trc(id, &svc, trc::CircuitState::Closed);

    let id = &d.id("time_window/failsafe");
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        0.5,
        10,
        TIME_WINDOW,
        failsafe::backoff::constant(LONG_OPEN),
    );
    let mut svc = failsafe_service(service_fn(echo), policy);
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_failsafe(id, &svc, "closed");

    group.finish();
}

fn count_window(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("count_window"));

    // A 50% failure-rate rule over the last 100 calls; every call succeeds. failsafe has
    // no count window.
    let id = &d.id("count_window/tower-circuit-breaker");
    let mut svc = ours(ours_rate_over(tcb::Window::count(100))).layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_ours(id, &svc, tcb::State::Closed);

    // The adaptive rule over the same window records every call (its baseline learns
    // from each full window): the cost of that next to the fixed rule.
    let id = &d.id("count_window/tower-circuit-breaker-adaptive");
    let config = tcb::Config::builder()
        .failure_rate_adaptive(tcb::AdaptiveFailureRate::new())
        .sliding_window(tcb::Window::count(100))
        .build()
        .expect("valid config");
    let mut svc = ours(config).layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_ours(id, &svc, tcb::State::Closed);

    let id = &d.id("count_window/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_type(trc::SlidingWindowType::CountBased)
        .sliding_window_size(100)
        .build()
        .expect("valid");
    let mut svc = layer.layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_trc(id, &svc, trc::CircuitState::Closed);

    let id = &d.id("count_window/recloser");
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .build();
    let mut svc = recloser_service(service_fn(echo), recloser);
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);

    group.finish();
}

fn slow_call(c: &mut Criterion, d: Driver) {
    let mut group = c.benchmark_group(d.id("slow_call"));

    // Slow-call detection on (threshold 1 s, open at 50% slow); every call is fast and
    // succeeds. failsafe and recloser have no slow-call rule.
    let id = &d.id("slow_call/tower-circuit-breaker");
    let config = tcb::Config::builder()
        .slow_call(Duration::from_secs(1), 0.5)
        .build()
        .expect("valid");
    let mut svc = ours(config).layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_ours(id, &svc, tcb::State::Closed);
    assert_eq!(svc.breaker().metrics().slow_calls, 0, "{id}");

    let id = &d.id("slow_call/tower-resilience");
    let layer = trc::CircuitBreakerLayer::builder()
        .slow_call_duration_threshold(Duration::from_secs(1))
        .slow_call_rate_threshold(0.5)
        .build()
        .expect("valid");
    let mut svc = layer.layer(service_fn(echo));
    bench_single(d, &mut group, id, &mut svc, || SUCCEEDING).assert_all_ok(id);
    assert_trc(id, &svc, trc::CircuitState::Closed);

    group.finish();
}

fn threads(c: &mut Criterion, d: Driver) {
    // Closed, every call succeeds, default configuration of each crate. With 2 threads,
    // both drive their own clone of one service (one shared breaker).
    for threads in [1usize, 2] {
        let group_name = d.id(&format!("threads_{threads}"));
        let mut group = c.benchmark_group(&group_name);
        let id = |name: &str| format!("{group_name}/{name}");

        let name = id("baseline");
        bench_threads(
            d,
            &mut group,
            &name,
            &service_fn(echo),
            threads,
            Requests::Succeeding,
        )
        .assert_all_ok(&name);

        let name = id(OURS);
        let svc = ours(tcb::Config::default()).layer(service_fn(echo));
        bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding)
            .assert_all_ok(&name);
        assert_ours(&name, &svc, tcb::State::Closed);

        let name = id(TOWER_RESILIENCE);
        let layer = trc::CircuitBreakerLayer::builder().build().expect("valid");
        let svc = layer.layer(service_fn(echo));
        bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding)
            .assert_all_ok(&name);
        assert_trc(&name, &svc, trc::CircuitState::Closed);

        let name = id(FAILSAFE);
        let svc = failsafe_default(service_fn(echo));
        bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding)
            .assert_all_ok(&name);
        assert_failsafe(&name, &svc, "closed");

        let name = id(RECLOSER);
        let svc = recloser_service(service_fn(echo), recloser::Recloser::default());
        bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding)
            .assert_all_ok(&name);

        group.finish();
    }
}

fn threads_rate(c: &mut Criterion, d: Driver) {
    // Closed, every call succeeds, 2 threads each driving their own clone of one
    // service: a 50% failure-rate rule over a count window of 100 (failsafe has no count
    // window: its default, as in `closed_10pct_failures`).
    let group_name = d.id("threads_2_rate");
    let mut group = c.benchmark_group(&group_name);
    let id = |name: &str| format!("{group_name}/{name}");
    let threads = 2;

    let name = id(OURS);
    let svc = ours(ours_rate_over(tcb::Window::count(100))).layer(service_fn(echo));
    bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding).assert_all_ok(&name);
    assert_ours(&name, &svc, tcb::State::Closed);

    let name = id(TOWER_RESILIENCE);
    let layer = trc::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_type(trc::SlidingWindowType::CountBased)
        .sliding_window_size(100)
        .build()
        .expect("valid");
    let svc = layer.layer(service_fn(echo));
    bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding).assert_all_ok(&name);
    assert_trc(&name, &svc, trc::CircuitState::Closed);

    let name = id(FAILSAFE);
    let svc = failsafe_default(service_fn(echo));
    bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding).assert_all_ok(&name);
    assert_failsafe(&name, &svc, "closed");

    let name = id(RECLOSER);
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .build();
    let svc = recloser_service(service_fn(echo), recloser);
    bench_threads(d, &mut group, &name, &svc, threads, Requests::Succeeding).assert_all_ok(&name);

    group.finish();
}

fn threads_failures(c: &mut Criterion, d: Driver) {
    // `closed_10pct_failures` on 2 threads, each driving its own clone of one service
    // and failing every 10th of its own calls: the failure path under sharing, where
    // a breaker earns its keep.
    let group_name = d.id("threads_2_10pct_failures");
    let mut group = c.benchmark_group(&group_name);
    let id = |name: &str| format!("{group_name}/{name}");
    let threads = 2;
    let failing = Requests::OneInTenFails;

    let name = id(OURS);
    let svc = ours(ours_rate_over(tcb::Window::count(100))).layer(service_fn(flaky));
    bench_threads(d, &mut group, &name, &svc, threads, failing)
        .assert_one_in_ten_failed_per_worker(&name, threads as u64);
    assert_ours(&name, &svc, tcb::State::Closed);

    let name = id(TOWER_RESILIENCE);
    let layer = trc::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_type(trc::SlidingWindowType::CountBased)
        .sliding_window_size(100)
        .build()
        .expect("valid");
    let svc = layer.layer(service_fn(flaky));
    bench_threads(d, &mut group, &name, &svc, threads, failing)
        .assert_one_in_ten_failed_per_worker(&name, threads as u64);
    assert_trc(&name, &svc, trc::CircuitState::Closed);

    let name = id(FAILSAFE);
    let svc = failsafe_default(service_fn(flaky));
    bench_threads(d, &mut group, &name, &svc, threads, failing)
        .assert_one_in_ten_failed_per_worker(&name, threads as u64);
    assert_failsafe(&name, &svc, "closed");

    let name = id(RECLOSER);
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .build();
    let svc = recloser_service(service_fn(flaky), recloser);
    bench_threads(d, &mut group, &name, &svc, threads, failing)
        .assert_one_in_ten_failed_per_worker(&name, threads as u64);

    group.finish();
}

/// Every scenario, each under both drivers back to back (this VM drifts over minutes,
/// so the two drivers of one scenario are measured close together).
fn all(c: &mut Criterion) {
    let scenarios: [fn(&mut Criterion, Driver); 11] = [
        baseline,
        closed_success,
        closed_ten_percent_failures,
        open_rejection,
        half_open,
        time_window,
        count_window,
        slow_call,
        threads,
        threads_rate,
        threads_failures,
    ];
    for scenario in scenarios {
        for driver in [Driver::Poll, Driver::User] {
            scenario(c, driver);
        }
    }
}

fn config() -> Criterion {
    // Shorter than criterion's defaults (3 s + 5 s per benchmark) so that a full run of
    // the ~80 benchmarks (two drivers) stays near ten minutes; `--quick` caps each at 3 s.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = all
}
criterion_main!(benches);
