//! The `metrics` series this crate writes (public as `export::*`), and the push of one
//! transition: the one export that happens as the breaker works, installed by every
//! breaker built as the state machine's transition observer (`core::observer`).
//! Everything else is copied on demand by `crate::export`, which stands above the
//! breaker this file stands below.

use metrics::{counter, gauge};

use crate::state::State;

/// Finished calls by `outcome`.
pub const CALLS: &str = "circuit_breaker_calls_total";
/// Calls rejected without reaching the downstream.
pub const REJECTED: &str = "circuit_breaker_rejected_total";
/// Calls slower than the slow-call threshold.
pub const SLOW_CALLS: &str = "circuit_breaker_slow_calls_total";
/// Times a trip rule fired in metrics-only mode, once per episode.
pub const WOULD_BE_TRIPS: &str = "circuit_breaker_would_be_trips_total";
/// One-hot state gauge, labelled by `state`.
pub const STATE: &str = "circuit_breaker_state";
/// Failure rate gauge.
pub const FAILURE_RATE: &str = "circuit_breaker_failure_rate";
/// Slow-call rate gauge.
pub const SLOW_CALL_RATE: &str = "circuit_breaker_slow_call_rate";
/// State transitions, labelled by `from` and `to`.
pub const TRANSITIONS: &str = "circuit_breaker_transitions_total";

/// Sets the one-hot state gauge of breaker `name` to `current`.
pub(crate) fn set_state(name: &str, current: State) {
    for state in State::ALL {
        let value = if state == current { 1.0 } else { 0.0 };
        gauge!(STATE, "breaker" => name.to_owned(), "state" => state.as_str()).set(value);
    }
}

/// Pushes one transition: the transitions counter and the state gauge. Installed as
/// the state machine's transition observer by every breaker built (see
/// `core::observer`), so transitions are pushed as they happen.
pub(crate) fn transition(name: &str, from: State, to: State) {
    counter!(
        TRANSITIONS,
        "breaker" => name.to_owned(),
        "from" => from.as_str(),
        "to" => to.as_str()
    )
    .increment(1);
    set_state(name, to);
}
