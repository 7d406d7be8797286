//! The retry policy: backoff, jitter, attempts, budget, predicate, and `CircuitOpen`.
//! All waits run in paused Tokio time.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::retry::budget::Budget;
use tower::{service_fn, BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::retry::{FindCircuitOpen, RetryPolicy};
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Error, State};

use crate::support::{Backend, BackendError, Mode};

const MS: Duration = Duration::from_millis(1);

/// A service that fails its first `failures` calls and records when each call arrived.
fn flaky(
    failures: usize,
) -> (
    impl Service<String, Response = usize, Error = BoxError, Future = impl Send> + Clone,
    Arc<Mutex<Vec<Duration>>>,
) {
    let start = Instant::now();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let svc = service_fn(move |request: String| {
        let mut seen = seen.lock().unwrap();
        seen.push(start.elapsed());
        let n = seen.len();
        async move {
            if n <= failures {
                Err(BoxError::from("transient"))
            } else {
                Ok(request.len())
            }
        }
    });
    (svc, arrivals)
}

fn no_jitter() -> tower_circuit_breaker::retry::RetryPolicyBuilder {
    RetryPolicy::builder()
        .base_delay(100 * MS)
        .max_delay(300 * MS)
        .jitter(0.0)
        .seed(1)
}

#[tokio::test(start_paused = true)]
async fn waits_grow_exponentially_up_to_max_delay_and_stop_at_max_attempts() {
    let (svc, arrivals) = flaky(usize::MAX);
    let policy = no_jitter().max_attempts(5).build().unwrap();
    let result = policy
        .into_layer()
        .layer(svc)
        .oneshot("abc".to_owned())
        .await;
    assert!(result.is_err());
    let arrivals = arrivals.lock().unwrap().clone();
    // 100, 200, then capped at 300, 300.
    assert_eq!(
        arrivals,
        [Duration::ZERO, 100 * MS, 300 * MS, 600 * MS, 900 * MS]
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_after_retries_is_returned() {
    let (svc, arrivals) = flaky(2);
    let policy = no_jitter().max_attempts(3).build().unwrap();
    let response = policy
        .into_layer()
        .layer(svc)
        .oneshot("abcd".to_owned())
        .await;
    assert_eq!(response.unwrap(), 4);
    assert_eq!(arrivals.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_attempt_never_retries() {
    let policy = no_jitter().max_attempts(1).build().unwrap();
    assert_eq!(attempts_against_a_dead_backend(policy).await, 1);
}

/// Sends one request through `policy` to a backend that always fails and returns how
/// many attempts reached the backend.
async fn attempts_against_a_dead_backend<P>(policy: RetryPolicy<P>) -> usize
where
    RetryPolicy<P>: tower::retry::Policy<String, usize, BoxError> + Clone,
{
    let (svc, arrivals) = flaky(usize::MAX);
    let result = policy.into_layer().layer(svc).oneshot(String::new()).await;
    assert!(result.is_err(), "the backend always fails");
    let attempts = arrivals.lock().unwrap().len();
    attempts
}

/// The waits of one request (two retries) with the given policy seed.
async fn waits(policy: &RetryPolicy) -> Vec<Duration> {
    let (svc, arrivals) = flaky(usize::MAX);
    let _ = tower::retry::Retry::new(policy.clone(), svc)
        .oneshot(String::new())
        .await;
    let arrivals = arrivals.lock().unwrap().clone();
    arrivals.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_in_range_replays_with_a_seed_and_differs_between_requests() {
    let build = |seed| {
        RetryPolicy::builder()
            .base_delay(100 * MS)
            .max_delay(10_000 * MS)
            .jitter(0.5)
            .max_attempts(3)
            .seed(seed)
            .build()
            .unwrap()
    };
    let policy = build(7);
    let mut all = Vec::new();
    for _ in 0..20 {
        let waits = waits(&policy).await;
        assert_eq!(waits.len(), 2);
        assert!((50 * MS..=100 * MS).contains(&waits[0]), "{waits:?}");
        assert!((100 * MS..=200 * MS).contains(&waits[1]), "{waits:?}");
        all.push(waits);
    }
    all.sort();
    all.dedup();
    assert!(
        all.len() > 10,
        "requests should jitter differently: {all:?}"
    );

    let replay_a = waits(&build(99)).await;
    let replay_b = waits(&build(99)).await;
    assert_eq!(replay_a, replay_b);
}

#[tokio::test(start_paused = true)]
async fn the_predicate_decides_what_is_retried() {
    let policy = no_jitter()
        .max_attempts(5)
        .retry_if(|result: Result<&usize, &BoxError>| {
            matches!(result, Err(e) if e.to_string() != "transient")
        })
        .build()
        .unwrap();
    assert_eq!(attempts_against_a_dead_backend(policy).await, 1);

    // Responses can be retried too.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let svc = service_fn(move |_: ()| {
        let n = counter.fetch_add(1, SeqCst);
        async move { Ok::<_, BoxError>(if n < 2 { 503 } else { 200 }) }
    });
    let policy = no_jitter()
        .max_attempts(5)
        .retry_if(|result: Result<&u16, &BoxError>| !matches!(result, Ok(200)))
        .build()
        .unwrap();
    assert_eq!(
        policy.into_layer().layer(svc).oneshot(()).await.unwrap(),
        200
    );
    assert_eq!(calls.load(SeqCst), 3);
}

#[derive(Debug, Default)]
struct CountingBudget {
    deposits: AtomicUsize,
    withdrawals: AtomicUsize,
    allowed: usize,
}

impl Budget for CountingBudget {
    fn deposit(&self) {
        self.deposits.fetch_add(1, SeqCst);
    }

    fn withdraw(&self) -> bool {
        self.withdrawals.fetch_add(1, SeqCst) < self.allowed
    }
}

#[tokio::test(start_paused = true)]
async fn a_budget_gets_one_deposit_per_request_and_one_withdrawal_per_retry() {
    #[derive(Clone)]
    struct Shared(Arc<CountingBudget>);
    impl Budget for Shared {
        fn deposit(&self) {
            self.0.deposit()
        }
        fn withdraw(&self) -> bool {
            self.0.withdraw()
        }
    }
    let budget = Arc::new(CountingBudget {
        allowed: 3,
        ..CountingBudget::default()
    });
    let policy = no_jitter()
        .max_attempts(10)
        .custom_budget(Shared(budget.clone()))
        .build()
        .unwrap();
    let (svc, arrivals) = flaky(usize::MAX);
    let svc = policy.into_layer().layer(svc);
    assert!(svc.clone().oneshot(String::new()).await.is_err());
    // Three retries were allowed, the fourth withdrawal was refused.
    assert_eq!(arrivals.lock().unwrap().len(), 4);
    assert_eq!(budget.deposits.load(SeqCst), 1);
    assert_eq!(budget.withdrawals.load(SeqCst), 4);

    assert!(svc.oneshot(String::new()).await.is_err());
    assert_eq!(
        arrivals.lock().unwrap().len(),
        5,
        "budget exhausted: no retry"
    );
    assert_eq!(budget.deposits.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_empty_tps_budget_allows_no_retry() {
    let policy = no_jitter()
        .max_attempts(5)
        .budget(Duration::from_secs(1), 0, 0.0)
        .build()
        .unwrap();
    assert_eq!(attempts_against_a_dead_backend(policy).await, 1);
}

#[tokio::test(start_paused = true)]
async fn a_tps_budget_with_reserve_allows_retries() {
    let policy = no_jitter()
        .max_attempts(3)
        .budget(Duration::from_secs(10), 10, 0.2)
        .build()
        .unwrap();
    assert_eq!(attempts_against_a_dead_backend(policy).await, 3);
}

/// A breaker that is open, in front of a backend that counts its calls.
fn open_breaker(open_for: Duration) -> (CircuitBreakerLayer, Backend) {
    let config = crate::support::builder()
        .consecutive_failures(1)
        .open_duration(open_for)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::new(config);
    let permit = layer.breaker().try_acquire().unwrap();
    permit.failure();
    assert_eq!(layer.breaker().state(), State::Open);
    (layer, Backend::new(Mode::Succeed))
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_never_retried_by_default() {
    let (breaker, backend) = open_breaker(Duration::from_secs(1));
    let policy = no_jitter().max_attempts(5).build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .layer(breaker)
        .service(backend.clone());
    let start = Instant::now();
    let err = svc.oneshot(1).await.unwrap_err();
    assert!(matches!(err, Error::Open(_)));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no backoff wait before giving up"
    );
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_found_through_boxed_errors() {
    let (breaker, backend) = open_breaker(Duration::from_secs(1));
    let policy = no_jitter().max_attempts(5).build().unwrap();
    // Buffer boxes the breaker's `Error<BackendError>` into a `BoxError`.
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .buffer(8)
        .layer(breaker.clone())
        .service(backend.clone());
    let start = Instant::now();
    let err: BoxError = svc.oneshot(1).await.unwrap_err();
    assert!(err.find_circuit_open().is_some(), "{err}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(backend.hits(), 0);
    assert_eq!(breaker.breaker().metrics().rejected, 1, "one attempt only");
}

#[tokio::test(start_paused = true)]
async fn waits_out_a_short_open_period_when_asked() {
    let (breaker, backend) = open_breaker(200 * MS);
    let policy = no_jitter()
        .max_delay(Duration::from_secs(1))
        .max_attempts(3)
        .wait_retry_after(true)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .layer(breaker.clone())
        .service(backend.clone());
    let start = Instant::now();
    assert_eq!(svc.oneshot(5).await.unwrap(), 5);
    assert_eq!(
        start.elapsed(),
        200 * MS,
        "waited exactly retry_after (no jitter)"
    );
    assert_eq!(backend.hits(), 1);
    assert_eq!(breaker.breaker().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn does_not_wait_longer_than_max_delay_for_an_open_breaker() {
    let (breaker, backend) = open_breaker(Duration::from_secs(30));
    let policy = no_jitter()
        .max_delay(Duration::from_secs(1))
        .max_attempts(3)
        .wait_retry_after(true)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .layer(breaker)
        .service(backend.clone());
    let start = Instant::now();
    let err = svc.oneshot(5).await.unwrap_err();
    let open: &CircuitOpen = err.circuit_open().expect("rejection");
    assert!(open.retry_after.unwrap() > Duration::from_secs(1));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_forced_open_breaker_is_not_waited_for() {
    let (breaker, backend) = open_breaker(Duration::from_secs(1));
    breaker.breaker().force_open();
    let policy = no_jitter().wait_retry_after(true).build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .layer(breaker)
        .service(backend.clone());
    let err = svc.oneshot(5).await.unwrap_err();
    assert_eq!(err.circuit_open().unwrap().retry_after, None);
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(start_paused = true)]
async fn inner_errors_of_the_breaker_are_retried() {
    let backend = Backend::new(Mode::Fail);
    let config = crate::support::builder()
        .consecutive_failures(10)
        .build()
        .unwrap();
    let policy = no_jitter().max_attempts(3).build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(policy.into_layer())
        .layer(CircuitBreakerLayer::new(config))
        .service(backend.clone());
    let err = svc.oneshot(1).await.unwrap_err();
    assert!(matches!(err, Error::Inner(BackendError(_))));
    assert_eq!(backend.hits(), 3);
}

#[test]
fn invalid_settings_name_their_field() {
    let cases = [
        (
            RetryPolicy::builder().base_delay(Duration::ZERO).build(),
            "base_delay",
        ),
        (
            RetryPolicy::builder()
                .base_delay(2 * MS)
                .max_delay(MS)
                .build(),
            "max_delay",
        ),
        (RetryPolicy::builder().multiplier(0.5).build(), "multiplier"),
        (
            RetryPolicy::builder().multiplier(f64::NAN).build(),
            "multiplier",
        ),
        (RetryPolicy::builder().jitter(-0.1).build(), "jitter"),
        (RetryPolicy::builder().jitter(1.01).build(), "jitter"),
        (
            RetryPolicy::builder().max_attempts(0).build(),
            "max_attempts",
        ),
        (
            RetryPolicy::builder().budget(MS, 1, 0.1).build(),
            "budget.ttl",
        ),
        (
            RetryPolicy::builder()
                .budget(Duration::from_secs(61), 1, 0.1)
                .build(),
            "budget.ttl",
        ),
        (
            RetryPolicy::builder()
                .budget(Duration::from_secs(1), u32::MAX, 0.1)
                .build(),
            "budget.min_per_sec",
        ),
        (
            RetryPolicy::builder()
                .budget(Duration::from_secs(1), 1, f32::NAN)
                .build(),
            "budget.retry_percent",
        ),
        (
            RetryPolicy::builder()
                .budget(Duration::from_secs(1), 1, 1000.5)
                .build(),
            "budget.retry_percent",
        ),
    ];
    for (result, field) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = RetryPolicy::builder().jitter(1.5).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `jitter` = 1.5: must be in [0.0, 1.0]"
    );
}

#[test]
fn defaults_are_valid_and_documented() {
    let policy = RetryPolicy::builder().build().unwrap();
    assert_eq!(policy.max_attempts(), 3);
    assert_eq!(policy.base_delay(), 50 * MS);
    assert_eq!(policy.max_delay(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn extreme_settings_do_not_panic() {
    use tower::retry::Policy;

    for jitter in [0.0, 0.5, 1.0] {
        let mut policy = RetryPolicy::builder()
            .base_delay(Duration::from_nanos(1))
            .max_delay(Duration::MAX)
            .multiplier(1e300)
            .jitter(jitter)
            .max_attempts(u32::MAX)
            .wait_retry_after(true)
            .build()
            .unwrap();
        let mut failed: Result<(), BoxError> = Err("x".into());
        for _ in 0..5 {
            assert!(policy.retry(&mut (), &mut failed).is_some());
        }
        let open = CircuitOpen {
            name: "x".into(),
            state: State::Open,
            retry_after: Some(Duration::MAX),
        };
        let mut rejected: Result<(), Error<BoxError>> = Err(Error::Open(open));
        assert!(policy.retry(&mut (), &mut rejected).is_some());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Every wait lies in `[nominal * (1 - jitter), nominal]`, where the nominal wait
    /// `min(base * multiplier^k, max)` grows with the retry number `k`.
    #[test]
    fn every_wait_is_within_its_jitter_band(
        base_us in 1u64..1_000_000,
        extra_us in 0u64..10_000_000,
        multiplier in 1.0f64..8.0,
        jitter in 0.0f64..=1.0,
        seed in proptest::prelude::any::<u64>(),
    ) {
        use tower::retry::Policy;

        let base = Duration::from_micros(base_us);
        let max = base + Duration::from_micros(extra_us);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut policy = RetryPolicy::builder()
                .base_delay(base)
                .max_delay(max)
                .multiplier(multiplier)
                .jitter(jitter)
                .max_attempts(20)
                .seed(seed)
                .build()
                .unwrap();
            let mut failed: Result<(), BoxError> = Err("x".into());
            let tolerance = Duration::from_micros(1);
            for k in 0..19 {
                let sleep = policy.retry(&mut (), &mut failed).expect("attempts left");
                let wait = sleep.deadline() - Instant::now();
                let nominal = Duration::from_secs_f64(
                    (base.as_secs_f64() * multiplier.powi(k)).min(max.as_secs_f64()),
                );
                assert!(wait <= nominal + tolerance, "k={k}: {wait:?} > {nominal:?}");
                let floor = nominal.mul_f64(1.0 - jitter);
                assert!(wait + tolerance >= floor, "k={k}: {wait:?} < {floor:?}");
            }
            assert!(policy.retry(&mut (), &mut failed).is_none(), "20 attempts in all");
        });
    }
}
