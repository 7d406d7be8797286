//! [`Event`]: what a breaker tells its subscribers.

use std::sync::Arc;
use std::time::Duration;

use crate::reason::TransitionReason;

use crate::state::State;

/// Something that happened in a breaker, delivered to every receiver returned by
/// [`CircuitBreaker::subscribe`](crate::CircuitBreaker::subscribe).
///
/// Events are only built while someone listens: without a receiver the breaker does
/// not construct, clone or send anything. Every event carries the breaker's name as a
/// shared `Arc<str>` (a reference-count bump, never a string copy), so one task can
/// watch many breakers.
///
/// ```
/// use tower_circuit_breaker::{CircuitBreaker, Config, Event, State};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new(Config::builder().name("db").consecutive_failures(1).build()?);
/// let mut events = breaker.subscribe();
/// breaker.try_acquire()?.failure();
///
/// assert!(matches!(events.recv().await?, Event::Failure { .. }));
/// match events.recv().await? {
///     Event::StateTransition { name, from, to, reason } => {
///         assert_eq!((&*name, from, to), ("db", State::Closed, State::Open));
///         println!("{name} opened: {reason}");
///     }
///     other => panic!("expected a transition, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The breaker changed state.
    StateTransition {
        /// The breaker's name.
        name: Arc<str>,
        /// The state it left.
        from: State,
        /// The state it entered.
        to: State,
        /// Why it changed.
        reason: TransitionReason,
    },
    /// A call was rejected without reaching the inner service.
    Rejected {
        /// The breaker's name.
        name: Arc<str>,
        /// The state that rejected it (`Open`, `ForcedOpen`, or `HalfOpen` with every
        /// probe permit taken).
        state: State,
    },
    /// An admitted call finished and was classified as a success.
    Success {
        /// The breaker's name.
        name: Arc<str>,
        /// The state the call was admitted in.
        state: State,
    },
    /// An admitted call finished and was classified as a failure.
    Failure {
        /// The breaker's name.
        name: Arc<str>,
        /// The state the call was admitted in.
        state: State,
    },
    /// An admitted call was slower than the slow-call threshold. Sent in addition to
    /// its [`Success`](Event::Success) or [`Failure`](Event::Failure) event.
    Slow {
        /// The breaker's name.
        name: Arc<str>,
        /// How long the call took.
        elapsed: Duration,
    },
    /// An admitted call was classified as ignored, or was cancelled before finishing.
    Ignored {
        /// The breaker's name.
        name: Arc<str>,
        /// The state the call was admitted in.
        state: State,
    },
    /// In [metrics-only](crate::CircuitBreaker::metrics_only) mode, a trip rule fired:
    /// the breaker would have opened, but lets calls through. Sent once per episode
    /// (until an outcome on which no rule fires), after the outcome that fired it, and
    /// counted in [`Metrics::would_be_trips`](crate::Metrics::would_be_trips).
    WouldBeTrip {
        /// The breaker's name.
        name: Arc<str>,
        /// The rule that fired, with the streak or the rate that fired it.
        reason: TransitionReason,
    },
    /// A trip rule fired on an endpoint's breaker, but opening it would have put more of
    /// its group out of rotation than the group's
    /// [`max_ejection_percent`](crate::balance::EndpointBreakersBuilder::max_ejection_percent)
    /// allows: the breaker stays closed and its rules start over. Sent once per firing.
    TripCapped {
        /// The breaker's name.
        name: Arc<str>,
        /// The rule that fired, with the streak or the rate that fired it.
        reason: TransitionReason,
        /// The group's endpoints out of rotation (open, half-open or forced open) at
        /// that moment.
        ejected: u32,
        /// The most the cap lets be out at once.
        max_ejected: u32,
    },
}

impl Event {
    /// The name of the breaker that sent the event.
    pub fn name(&self) -> &str {
        match self {
            Event::StateTransition { name, .. }
            | Event::Rejected { name, .. }
            | Event::Success { name, .. }
            | Event::Failure { name, .. }
            | Event::Slow { name, .. }
            | Event::Ignored { name, .. }
            | Event::WouldBeTrip { name, .. }
            | Event::TripCapped { name, .. } => name,
        }
    }
}
