//! Announcing: what the world learns of a transition or a would-be trip, after the
//! transition lock is released. A log line, an [`Event`] to subscribers, the
//! [`observer`](crate::core::observer) hook (the metrics export), and a wake-up of
//! backpressure waiters.

use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use super::transition::Transition;
use super::StateMachine;
use crate::core::ejection::Capped;
use crate::core::observer;
use crate::core::window::WindowStats;
use crate::event::Event;
use crate::reason::TransitionReason;
use crate::state::State;

impl StateMachine {
    /// Logs a transition, tells subscribers and wakes waiters; called after the lock is
    /// released so a slow `tracing` subscriber does not hold up other threads'
    /// transitions.
    pub(super) fn announce(&self, done: &Transition) {
        let name = &*self.name;
        let Transition {
            from, to, reason, ..
        } = *done;
        match to {
            State::Open => tracing::warn!(
                breaker = name,
                %from,
                %reason,
                consecutive_failures = done.failures,
                failure_rate = done.window.map(|window| window.failure_rate()),
                slow_call_rate = done.window.map(|window| window.slow_rate()),
                window_calls = done.window.map(|window| window.calls),
                open_for = ?done.open_for.unwrap_or_default(),
                "circuit breaker opened"
            ),
            State::HalfOpen => {
                tracing::info!(breaker = name, %from, %reason, "circuit breaker half-open")
            }
            State::Closed => {
                tracing::info!(breaker = name, %from, %reason, "circuit breaker closed")
            }
            _ => {
                tracing::info!(breaker = name, %from, to = %to, "circuit breaker state set manually")
            }
        }
        observer::notify(name, from, to);
        if self.events.is_listening() {
            self.events.emit(|| Event::StateTransition {
                name: Arc::clone(&self.name),
                from,
                to,
                reason,
            });
        }
        self.changed.notify_waiters();
        if let Some(budget) = &self.ejection {
            budget.changed.notify_waiters();
        }
    }

    /// A member of a group of endpoint breakers would have opened, but the group's
    /// ejection cap is reached: it stays in rotation.
    #[cold]
    #[inline(never)]
    pub(super) fn announce_capped_trip(&self, reason: TransitionReason, capped: Capped) {
        let name = &self.name;
        tracing::warn!(
            breaker = &**name,
            %reason,
            ejected = capped.ejected,
            max_ejected = capped.allowed,
            "circuit breaker kept closed: its group's ejection cap is reached"
        );
        if self.events.is_listening() {
            self.events.emit(|| Event::TripCapped {
                name: Arc::clone(name),
                reason,
                ejected: capped.ejected,
                max_ejected: capped.allowed,
            });
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn announce_would_be_trip(
        &self,
        reason: TransitionReason,
        window: Option<WindowStats>,
    ) {
        self.would_be_trips.fetch_add(1, Relaxed);
        let name = &self.name;
        tracing::info!(
            breaker = &**name,
            %reason,
            consecutive_failures = self
                .counts_streaks()
                .then(|| self.consecutive_failures.load(Acquire)),
            failure_rate = window.map(|window| window.failure_rate()),
            slow_call_rate = window.map(|window| window.slow_rate()),
            window_calls = window.map(|window| window.calls),
            "circuit breaker would open (metrics-only mode)"
        );
        if self.events.is_listening() {
            self.events.emit(|| Event::WouldBeTrip {
                name: Arc::clone(name),
                reason,
            });
        }
    }
}
