//! `FallbackLayer`: rejections become fallback responses, inner errors pass through,
//! and a fallback never touches the inner service.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use tower::{Layer, Service, ServiceExt};
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, FallbackLayer, State};

#[tokio::test(start_paused = true)]
async fn rejections_become_the_fallback_and_inner_errors_pass_through() {
    let backend = Backend::new(Mode::Fail);
    let breaker = CircuitBreakerLayer::new(
        builder()
            .consecutive_failures(2)
            .open_duration(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    let fallbacks = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fallbacks);
    let degraded = move |open: CircuitOpen| {
        counter.fetch_add(1, SeqCst);
        assert_eq!(open.state, State::Open);
        assert!(open.retry_after.is_some());
        u32::MAX // "degraded" answer
    };
    let mut svc = FallbackLayer::new(degraded).layer(breaker.layer(backend.clone()));

    for _ in 0..2 {
        let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(
            err,
            BackendError("backend failed"),
            "inner errors are unwrapped"
        );
    }
    assert_eq!(breaker.breaker().state(), State::Open);
    for _ in 0..3 {
        assert_eq!(svc.ready().await.unwrap().call(1).await, Ok(u32::MAX));
    }
    assert_eq!(fallbacks.load(SeqCst), 3);
    assert_eq!(
        backend.hits(),
        2,
        "fallback answers never reach the backend"
    );
    assert_eq!(breaker.breaker().metrics().rejected, 3);

    tokio::time::advance(Duration::from_secs(10)).await;
    backend.set(Mode::Succeed);
    assert_eq!(
        svc.ready().await.unwrap().call(7).await,
        Ok(7),
        "a real probe"
    );
    assert_eq!(fallbacks.load(SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn forced_open_serves_the_fallback_without_retry_after() {
    let backend = Backend::new(Mode::Succeed);
    let breaker = CircuitBreakerLayer::new(builder().build().unwrap());
    breaker.breaker().force_open();
    let svc = FallbackLayer::new(|open: CircuitOpen| {
        assert_eq!(open.state, State::ForcedOpen);
        open.retry_after.map_or(0, |after| after.as_secs() as u32)
    })
    .layer(breaker.layer(backend.clone()));
    assert_eq!(svc.oneshot(5).await, Ok(0));
    assert_eq!(backend.hits(), 0);
}
