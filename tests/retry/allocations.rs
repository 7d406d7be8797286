//! Allocation counts of the retry policy and the classifier's load-shed check (counted,
//! not timed). Tower's `Retry` itself allocates nothing per retry either; the policy must
//! not add any: cloning it per request, deciding a retry, and creating its sleep.

use std::time::Duration;

use tower::load_shed::error::Overloaded;
use tower::retry::Policy;
use tower_circuit_breaker::retry::RetryPolicy;
use tower_circuit_breaker::{
    BoxError, CircuitOpen, Classify, DefaultClassifier, Error, Outcome, State,
};

use crate::counting_allocator::allocations_in;

const ROUNDS: u64 = 1_000;

#[tokio::test(start_paused = true)]
async fn deciding_retries_allocates_nothing() {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .budget(Duration::from_secs(10), 1_000_000, 10.0)
        .seed(5)
        .build()
        .unwrap();
    let mut request = 7u64;
    let mut failed: Result<u64, BoxError> = Err("transient".into());
    let open = CircuitOpen {
        name: "db".into(),
        state: State::Open,
        retry_after: Some(Duration::from_secs(1)),
    };
    let mut rejected: Result<u64, Error<BoxError>> = Err(Error::Open(open));

    let round = |policy: &RetryPolicy,
                 request: &mut u64,
                 failed: &mut Result<u64, BoxError>,
                 rejected: &mut Result<u64, Error<BoxError>>| {
        // What `tower::retry::Retry` does for one request with two failed attempts.
        let mut per_request = policy.clone();
        let copy = Policy::<u64, u64, BoxError>::clone_request(&mut per_request, request);
        assert_eq!(copy, Some(7));
        let first = per_request.retry(request, failed);
        let second = per_request.retry(request, failed);
        assert!(first.is_some() && second.is_some());
        assert!(per_request.retry(request, failed).is_none(), "max_attempts");
        drop((first, second));
        let mut other = policy.clone();
        assert!(other.retry(request, rejected).is_none(), "CircuitOpen");
    };
    round(&policy, &mut request, &mut failed, &mut rejected); // warm-up
    let allocations = allocations_in(|| {
        for _ in 0..ROUNDS {
            round(&policy, &mut request, &mut failed, &mut rejected);
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {ROUNDS} rounds"
    );
}

#[test]
fn recognising_a_load_shed_rejection_allocates_nothing() {
    let shed: BoxError = Box::new(Overloaded::new());
    let sick: BoxError = "sick".into();
    let allocations = allocations_in(|| {
        for _ in 0..ROUNDS {
            let shed: Result<&(), &BoxError> = Err(&shed);
            let sick: Result<&(), &BoxError> = Err(&sick);
            assert_eq!(DefaultClassifier.classify(shed), Outcome::Ignored);
            assert_eq!(DefaultClassifier.classify(sick), Outcome::Failure);
            let bare: Result<&(), &Overloaded> = Err(&Overloaded::new());
            assert_eq!(DefaultClassifier.classify(bare), Outcome::Ignored);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn the_allocation_counter_sees_allocations() {
    let allocations = allocations_in(|| drop(std::hint::black_box(Box::new(42u64))));
    assert_eq!(allocations, 1);
}
