//! [`ResponseFuture`]: carries a call's permit until the inner future finishes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::breaker::{CircuitBreaker, Permit};
use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::error::{CircuitOpen, Error};

pin_project! {
    /// The future returned by [`CircuitBreakerService`](crate::CircuitBreakerService) and
    /// by [`CircuitBreaker::call`](crate::CircuitBreaker::call).
    ///
    /// It either resolves at once to a rejection, or drives the inner future and then
    /// records the classified outcome. Dropped before completion, it returns its permit
    /// (a half-open probe slot is freed) and records [`Ignored`](crate::Outcome::Ignored);
    /// if the inner future or the classifier panicked, it records
    /// [`Failure`](crate::Outcome::Failure) instead, wherever the panic is caught.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: ResponseState<F, C>,
    }
}

pin_project! {
    #[project = ResponseStateProj]
    enum ResponseState<F, C> {
        Called {
            #[pin]
            future: F,
            permit: Permit,
            classifier: C,
        },
        Rejected {
            open: Option<CircuitOpen>,
        },
    }
}

/// Calls guarded without Tower: the future they return is the layer's.
impl CircuitBreaker {
    /// Runs `call` under the breaker, without Tower: the direct counterpart of the
    /// layer, for a database query or any other future that yields a `Result`.
    ///
    /// Admission happens here, when `call` is made (await the result right away): a
    /// rejected call resolves at once to [`Error::Open`](crate::Error::Open) and `call` is dropped without
    /// being polled. An admitted call's result is classified by [`DefaultClassifier`]
    /// (`Err` fails; see [`call_classified`](Self::call_classified) for your own) and
    /// timed for the slow-call rule from here on. Cancel-safe: a future dropped before
    /// it finishes records [`Outcome::Ignored`](crate::Outcome::Ignored) and gives back
    /// a half-open probe slot it held. Allocates nothing.
    ///
    /// ```
    /// use tower_circuit_breaker::{CircuitBreaker, Config, Error};
    ///
    /// # async fn query(sql: &str) -> Result<u64, std::io::Error> { Ok(sql.len() as u64) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = CircuitBreaker::new(Config::builder().name("db").build()?);
    /// match db.call(query("SELECT 1")).await {
    ///     Ok(rows) => assert_eq!(rows, 8),
    ///     Err(Error::Open(open)) => eprintln!("db is out; retry after {:?}", open.retry_after),
    ///     Err(Error::Inner(e)) => eprintln!("query failed: {e}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<F, T, E>(&self, call: F) -> ResponseFuture<F, DefaultClassifier>
    where
        F: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.call_classified(call, DefaultClassifier)
    }

    /// [`call`](Self::call), with `classifier` deciding each result's
    /// [`Outcome`](crate::Outcome) (a closure needs its parameter type written out).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use tower_circuit_breaker::{CircuitBreaker, Config, Outcome};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = CircuitBreaker::new(Config::builder().consecutive_failures(1).build()?);
    /// let not_found = |result: Result<&u64, &std::io::Error>| match result {
    ///     Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Ignored, // the caller's miss
    ///     Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// };
    /// let missing = db.call_classified(async { Err(ErrorKind::NotFound.into()) }, not_found);
    /// assert!(missing.await.is_err());
    /// assert_eq!(db.metrics().ignored, 1); // not a failure: the breaker stays closed
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_classified<F, C>(&self, call: F, classifier: C) -> ResponseFuture<F, C> {
        match self.try_acquire() {
            Ok(permit) => ResponseFuture::called(call, permit, classifier),
            Err(open) => ResponseFuture::rejected(open),
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    /// The future of a call made under `permit` (already marked used).
    pub(crate) fn called(future: F, permit: Permit, classifier: C) -> Self {
        ResponseFuture {
            state: ResponseState::Called {
                future,
                permit,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(open: CircuitOpen) -> Self {
        ResponseFuture {
            state: ResponseState::Rejected { open: Some(open) },
        }
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    C: Classify<Res, E>,
    E: 'static,
{
    type Output = Result<Res, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseStateProj::Called {
                future,
                permit,
                classifier,
            } => {
                // If the inner future or the classifier panics, the permit sees
                // `polling` still set when it is dropped and records a failure.
                permit.set_polling(true);
                let Poll::Ready(result) = future.poll(cx) else {
                    permit.set_polling(false);
                    return Poll::Pending;
                };
                let outcome = classifier.classify(result.as_ref());
                let floor = match outcome {
                    Outcome::Failure => classifier.retry_after(result.as_ref()),
                    _ => None,
                };
                permit.set_polling(false);
                match floor {
                    None => permit.settle(outcome),
                    Some(floor) => permit.settle_failure_with_floor(floor),
                }
                if result.is_err() {
                    // An outer breaker or a retry policy may search this error for a
                    // rejection from further in (`Error::Inner(Error::Open(_))`).
                    crate::error::nested::register::<E>();
                }
                Poll::Ready(result.map_err(Error::Inner))
            }
            ResponseStateProj::Rejected { open } => {
                // An outer breaker or a retry policy must recognise this rejection
                // inside its own typed error.
                crate::error::nested::register::<E>();
                Poll::Ready(Err(Error::Open(
                    open.take()
                        .expect("ResponseFuture polled after it completed"),
                )))
            }
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ResponseState::Called { .. } => "called",
            ResponseState::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
