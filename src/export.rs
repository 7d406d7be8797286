//! Export through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Every series carries a `breaker` label with the breaker's name:
//!
//! | name | kind | labels | meaning |
//! |------|------|--------|---------|
//! | `circuit_breaker_calls_total` | counter | `outcome` = `success` / `failure` / `ignored` | finished calls by outcome |
//! | `circuit_breaker_rejected_total` | counter | | calls rejected without reaching the downstream |
//! | `circuit_breaker_slow_calls_total` | counter | | calls slower than the slow-call threshold |
//! | `circuit_breaker_would_be_trips_total` | counter | | metrics-only mode: times a rule would have opened the breaker (once per episode) |
//! | `circuit_breaker_state` | gauge | `state` | one-hot: 1 for the current state, 0 for the six others |
//! | `circuit_breaker_failure_rate` | gauge | | failure rate over the sliding window, `0..=1`; only for breakers with a window |
//! | `circuit_breaker_slow_call_rate` | gauge | | slow-call rate over the sliding window, `0..=1`; only for breakers with a window |
//! | `circuit_breaker_transitions_total` | counter | `from`, `to` | state transitions |
//!
//! The call path pays nothing for this, with or without the feature: counters and rates
//! are copied from the breaker's own [`Metrics`](crate::Metrics) snapshot by
//! [`CircuitBreaker::export_metrics`] / [`Registry::export_metrics`] (call them before
//! a scrape, or run [`Registry::export_metrics_every`] in a task). Transitions are rare
//! and pushed as they happen: the transitions counter and the state gauge are current
//! even between exports. The state gauge writes all seven states each time, so the
//! previous state's series goes back to 0 instead of staying at a stale 1.
//!
//! The two rate gauges exist only for breakers with a
//! [`sliding_window`](crate::ConfigBuilder::sliding_window): without one the breaker
//! keeps no recent rate, and a lifetime ratio (which stops moving after a while) would
//! pass for one on a dashboard. Derive lifetime ratios from the counters instead.
//!
//! ```
//! use tower_circuit_breaker::{Config, Registry};
//!
//! let registry = Registry::new();
//! tower_circuit_breaker::export::describe_metrics();
//! registry.get_or_insert("db", Config::default()).try_acquire().unwrap().success();
//! registry.export_metrics(); // e.g. right before rendering a scrape
//! ```

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use crate::breaker::CircuitBreaker;
use crate::metric_series::set_state;
use crate::registry::Registry;

pub use crate::metric_series::{
    CALLS, FAILURE_RATE, REJECTED, SLOW_CALLS, SLOW_CALL_RATE, STATE, TRANSITIONS, WOULD_BE_TRIPS,
};

/// Registers help texts and units for every series with the installed recorder.
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe_metrics() {
    describe_counter!(CALLS, Unit::Count, "Finished calls by outcome.");
    describe_counter!(REJECTED, Unit::Count, "Calls rejected by an open breaker.");
    describe_counter!(SLOW_CALLS, Unit::Count, "Calls slower than the threshold.");
    describe_counter!(
        WOULD_BE_TRIPS,
        Unit::Count,
        "Metrics-only mode: times a rule would have opened the breaker."
    );
    describe_gauge!(
        STATE,
        "1 for the breaker's current state, 0 for the others."
    );
    describe_gauge!(
        FAILURE_RATE,
        "Failure rate over the sliding window, 0 to 1."
    );
    describe_gauge!(
        SLOW_CALL_RATE,
        "Slow-call rate over the sliding window, 0 to 1."
    );
    describe_counter!(TRANSITIONS, Unit::Count, "State transitions.");
}

#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
impl CircuitBreaker {
    /// Copies this breaker's counters, rates and state into the installed `metrics`
    /// recorder (see the [`export`](crate::export) module for the series). Counters are
    /// set to the breaker's totals, so exporting twice counts nothing twice.
    pub fn export_metrics(&self) {
        let metrics = self.metrics();
        let name = self.name();
        for (outcome, total) in [
            ("success", metrics.successes),
            ("failure", metrics.failures),
            ("ignored", metrics.ignored),
        ] {
            counter!(CALLS, "breaker" => name.to_owned(), "outcome" => outcome).absolute(total);
        }
        counter!(REJECTED, "breaker" => name.to_owned()).absolute(metrics.rejected);
        counter!(SLOW_CALLS, "breaker" => name.to_owned()).absolute(metrics.slow_calls);
        counter!(WOULD_BE_TRIPS, "breaker" => name.to_owned()).absolute(metrics.would_be_trips);
        if self.has_window() {
            gauge!(FAILURE_RATE, "breaker" => name.to_owned()).set(metrics.failure_rate);
            gauge!(SLOW_CALL_RATE, "breaker" => name.to_owned()).set(metrics.slow_call_rate);
        }
        set_state(name, metrics.state);
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
impl Registry {
    /// [`CircuitBreaker::export_metrics`] for every registered breaker.
    pub fn export_metrics(&self) {
        for breaker in self {
            breaker.export_metrics();
        }
    }

    /// Exports every `period`, forever: spawn it on the runtime
    /// (`tokio::spawn(registry.clone().export_metrics_every(Duration::from_secs(5)))`).
    /// Breakers registered later are picked up at the next tick.
    pub async fn export_metrics_every(self, period: Duration) {
        let mut ticks = tokio::time::interval(period.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.export_metrics();
        }
    }
}
