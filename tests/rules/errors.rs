//! Errors a user prints and matches: every message once along a `source()` chain, the
//! rejection found through boxing layers and nested breakers, `BoxError` from the layer
//! without glue, and a nested breaker's rejection neither counted nor retried.

use std::error::Error as StdError;
use std::time::Duration;

use crate::support::{Backend, BackendError, Mode};
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::retry::RetryPolicy;
use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Config, Error, State};

fn rejection() -> CircuitOpen {
    CircuitOpen {
        name: "db".into(),
        state: State::Open,
        retry_after: Some(Duration::from_micros(1_999_574)),
    }
}

/// The `Display` of `error` and of each of its sources, outermost first.
fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        messages.push(next.to_string());
        source = next.source();
    }
    messages
}

/// Every message of the chain is printed by one link only: no link's text contains a
/// later link's text.
fn assert_each_message_once(error: &(dyn StdError + 'static), expected: &[&str]) {
    let messages = chain(error);
    assert_eq!(messages, expected, "the chain as printed");
    for (i, outer) in messages.iter().enumerate() {
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its source {inner:?}"
            );
        }
    }
}

#[test]
fn every_message_appears_once_along_a_source_chain() {
    let open = "circuit breaker `db` is open; retry after 2s";
    assert_each_message_once(&rejection(), &[open]);

    let rejected = Error::<BackendError>::Open(rejection());
    assert_each_message_once(
        &rejected,
        &["call rejected without reaching the inner service", open],
    );

    let failed = Error::Inner(BackendError("connection refused"));
    assert_each_message_once(&failed, &["inner service failed", "connection refused"]);

    // Two breakers stacked: the inner one's rejection under the outer one's wrapper.
    let nested = Error::<Error<BackendError>>::Inner(Error::Open(rejection()));
    assert_each_message_once(
        &nested,
        &[
            "inner service failed",
            "call rejected without reaching the inner service",
            open,
        ],
    );

    // Flattened into a BoxError, the rejection or the inner error is the error itself.
    let boxed = Error::<BackendError>::Open(rejection()).into_box_error();
    assert_each_message_once(&*boxed, &[open]);
    let boxed = Error::Inner(BackendError("connection refused")).into_box_error();
    assert_each_message_once(&*boxed, &["connection refused"]);
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_found_through_buffer_timeout_and_nested_breakers() {
    let inner = CircuitBreakerLayer::new(Config::builder().name("inner").build().unwrap());
    let outer = CircuitBreakerLayer::new(Config::builder().name("outer").build().unwrap());
    inner.breaker().force_open();

    // Typed: outer(inner(backend)) fails with Error<Error<BackendError>>.
    let typed = ServiceBuilder::new()
        .layer(outer.clone())
        .layer(inner.clone())
        .service(Backend::new(Mode::Succeed));
    let error = typed.oneshot(1).await.unwrap_err();
    assert_eq!(
        CircuitOpen::find(&error).map(|open| &*open.name),
        Some("inner")
    );

    // Boxed by a Timeout between the breakers, then by a Buffer around the outer one.
    let boxed = ServiceBuilder::new()
        .buffer(4)
        .layer(outer.clone().box_errors())
        .timeout(Duration::from_secs(1))
        .layer(inner.clone())
        .service(Backend::new(Mode::Succeed));
    let error: BoxError = boxed.oneshot(1).await.unwrap_err();
    assert_eq!(
        CircuitOpen::find(&*error).map(|open| &*open.name),
        Some("inner")
    );
    assert_eq!(outer.breaker().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn box_errors_gives_a_box_error_without_map_err() {
    let layer =
        CircuitBreakerLayer::new(Config::builder().consecutive_failures(1).build().unwrap());
    let backend = Backend::new(Mode::Fail);
    // A Timeout inside yields BoxError; the layer passes it through as BoxError too.
    let svc = ServiceBuilder::new()
        .layer(layer.clone().box_errors())
        .timeout(Duration::from_secs(1))
        .service(backend.clone());
    let failed: BoxError = svc.clone().oneshot(1).await.unwrap_err();
    assert_eq!(failed.to_string(), "backend failed");
    assert!(
        failed.downcast_ref::<BackendError>().is_some(),
        "the inner error, unwrapped"
    );

    let rejected: BoxError = svc.oneshot(1).await.unwrap_err();
    let open = rejected
        .downcast_ref::<CircuitOpen>()
        .expect("the rejection itself");
    assert_eq!(open.state, State::Open);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_outer_breaker_ignores_an_inner_breakers_rejection() {
    let trips_at_once = || Config::builder().consecutive_failures(1).build().unwrap();
    let inner = CircuitBreakerLayer::new(trips_at_once());
    let outer = CircuitBreakerLayer::new(trips_at_once());
    inner.breaker().force_open();
    let backend = Backend::new(Mode::Succeed);

    // Typed errors, breakers stacked directly.
    let typed = ServiceBuilder::new()
        .layer(outer.clone())
        .layer(inner.clone())
        .service(backend.clone());
    for _ in 0..3 {
        let error = typed.clone().oneshot(1).await.unwrap_err();
        assert!(matches!(error, Error::Inner(Error::Open(_))), "{error:?}");
    }
    // Boxed between them.
    let boxed = ServiceBuilder::new()
        .layer(outer.clone())
        .timeout(Duration::from_secs(1))
        .layer(inner.clone())
        .service(backend.clone());
    boxed.oneshot(1).await.unwrap_err();

    let metrics = outer.breaker().metrics();
    assert_eq!(
        outer.breaker().state(),
        State::Closed,
        "nothing said the backend is sick"
    );
    assert_eq!((metrics.failures, metrics.ignored), (0, 4));
    assert_eq!(inner.breaker().metrics().rejected, 4);
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_a_nested_breakers_rejection() {
    let inner =
        CircuitBreakerLayer::new(Config::builder().consecutive_failures(1).build().unwrap());
    // Two failures would open the outer breaker: retried rejections would count as such.
    let outer =
        CircuitBreakerLayer::new(Config::builder().consecutive_failures(2).build().unwrap());
    let backend = Backend::new(Mode::Fail);
    let retry = RetryPolicy::builder()
        .base_delay(Duration::from_millis(10))
        .max_attempts(3)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(retry.into_layer())
        .layer(outer.clone())
        .layer(inner.clone())
        .service(backend.clone());

    // The first attempt fails at the backend and trips the inner breaker; it is retried,
    // the inner breaker rejects the retry, and that rejection ends the call.
    let error = svc.oneshot(1).await.unwrap_err();
    assert!(matches!(error, Error::Inner(Error::Open(_))), "{error:?}");
    assert_eq!(backend.hits(), 1);
    assert_eq!(
        inner.breaker().metrics().rejected,
        1,
        "two attempts, not three"
    );
    let outer_metrics = outer.breaker().metrics();
    assert_eq!((outer_metrics.failures, outer_metrics.ignored), (1, 1));
    assert_eq!(
        outer.breaker().state(),
        State::Closed,
        "the rejection is not a failure"
    );
}
