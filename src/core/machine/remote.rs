//! Hooks through which a fleet-wide state store (feature `redis`, see `crate::fleet`)
//! steers one instance's breaker. They are the only way state from other instances
//! enters the machine, and none of them is on a per-call path:
//!
//! - [`open_remote`](StateMachine::open_remote): open until a deadline another instance
//!   published, with [`TransitionReason::Remote`]. Unlike `force_open` it ends on its own, like a
//!   local trip, and it does not grow the local backoff.
//! - [`close_remote`](StateMachine::close_remote): another instance's probes succeeded.
//! - [`set_probe_gate`](StateMachine::set_probe_gate): while the gate is shut, an
//!   elapsed open period does not move to half-open, so only the instance that holds the
//!   fleet's probe lease sends probes. The admission path reads it only once the open
//!   period has elapsed, so a closed breaker never looks at it.
//!
//! Operator overrides (forced open or closed, disabled, metrics-only) win over remote
//! state: the hooks leave those states alone.

// Without the fleet feature only the gate check on the admission path is used.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::Duration;

use super::{OpenDuration, StateMachine};
use crate::clock::to_nanos;
use crate::core::admission::{Admission, Rejection};
use crate::reason::TransitionReason;
use crate::state::State;

impl StateMachine {
    /// Opens for `remaining` because another instance of the fleet opened. A closed or
    /// half-open breaker opens (half-open probes in flight become stale); an open one
    /// stays open at least until the later of its own and the remote deadline. Returns
    /// whether a transition happened.
    pub(crate) fn open_remote(&self, remaining: Duration) -> bool {
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            match current.state {
                State::Closed | State::HalfOpen => {}
                State::Open => {
                    // Every write of `open_until` happens under this lock.
                    let until = self.clock.now().saturating_add(to_nanos(remaining));
                    if until > self.open_until.load(Acquire) {
                        self.open_until.store(until, Release);
                    }
                    return false;
                }
                State::ForcedOpen | State::ForcedClosed | State::Disabled | State::MetricsOnly => {
                    return false
                }
            }
            self.enter_for(
                &mut log,
                current,
                State::Open,
                TransitionReason::Remote,
                false,
                OpenDuration::Set(remaining),
            )
        };
        self.announce(&done);
        true
    }

    /// Closes an open or half-open breaker because another instance's probes
    /// succeeded. Returns whether a transition happened.
    pub(crate) fn close_remote(&self) -> bool {
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if !matches!(current.state, State::Open | State::HalfOpen) {
                return false;
            }
            self.enter(
                &mut log,
                current,
                State::Closed,
                TransitionReason::Remote,
                false,
                None,
            )
        };
        self.announce(&done);
        true
    }

    /// Shuts (`true`) or opens (`false`) the probe gate. Opening it wakes backpressure
    /// waiters, whose next admission may now move to half-open.
    pub(crate) fn set_probe_gate(&self, shut: bool) {
        self.probe_gate.store(shut, Release);
        if !shut {
            self.changed.notify_waiters();
        }
    }

    /// The current state, its generation and why it was entered (`None` before the
    /// first transition), read consistently under the transition lock.
    pub(crate) fn last_transition(&self) -> (State, u32, Option<TransitionReason>) {
        let log = self.lock_transitions();
        let word = self.word();
        (word.state, word.generation, log.last_reason)
    }

    /// Whether the probe gate is shut.
    pub(crate) fn probe_gate_shut(&self) -> bool {
        self.probe_gate.load(Acquire)
    }

    /// While open: how long until a call may probe (zero once it may): the end of the
    /// open period, or sooner the next probe-interval scout. The fleet asks for the
    /// probe lease then.
    pub(crate) fn probe_due_in(&self) -> Option<Duration> {
        if self.state() != State::Open {
            return None;
        }
        let now = self.clock.now();
        Some(Duration::from_nanos(
            self.probe_due_at().saturating_sub(now),
        ))
    }

    /// While open: how long until the open period ends (zero once it has).
    pub(crate) fn open_remaining(&self) -> Option<Duration> {
        if self.state() != State::Open {
            return None;
        }
        let now = self.clock.now();
        Some(Duration::from_nanos(
            self.open_until.load(Acquire).saturating_sub(now),
        ))
    }

    /// The rejection of a call that finds the open period elapsed but the probe gate
    /// shut: another instance is probing. Come back within the probe wait, by which the
    /// fleet's probe has succeeded, failed or timed out.
    #[cold]
    #[inline(never)]
    pub(super) fn gated(&self) -> Admission {
        Admission::Rejected(self.gated_rejection())
    }

    /// The rejection of [`gated`](Self::gated).
    pub(super) fn gated_rejection(&self) -> Rejection {
        // With a probe interval, the next chance to probe comes sooner.
        let wait = match self.config.probe_interval {
            Some(interval) => self.config.half_open_max_wait.min(interval),
            None => self.config.half_open_max_wait,
        };
        Rejection::for_nanos(State::Open, to_nanos(wait))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::StateMachine;
    use crate::classify::Outcome;
    use crate::clock::to_nanos;
    use crate::config::Config;
    use crate::core::admission::{Admission, Rejection, Ticket};
    use crate::state::State;

    fn machine() -> StateMachine {
        StateMachine::new(
            Config::builder()
                .consecutive_failures(1)
                .open_duration(Duration::from_secs(10))
                .build()
                .unwrap(),
        )
    }

    /// Records a plain failure of the call admitted with `ticket`.
    fn fail(machine: &StateMachine, ticket: Ticket) {
        let generation = ticket.generation();
        machine.record(
            ticket.kind(),
            generation,
            Outcome::Failure,
            false,
            None,
            None,
        );
    }

    fn trip(machine: &StateMachine) {
        let Admission::Admitted(ticket) = machine.admit() else {
            panic!("closed admits")
        };
        fail(machine, ticket);
        assert_eq!(machine.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_open_ends_at_its_deadline() {
        let machine = machine();
        assert!(machine.open_remote(Duration::from_secs(3)));
        assert_eq!(machine.state(), State::Open);
        assert_eq!(machine.open_remaining(), Some(Duration::from_secs(3)));
        assert!(matches!(machine.admit(), Admission::Rejected(_)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(matches!(
            machine.admit(),
            Admission::Admitted(ticket) if ticket.is_probe()
        ));
        assert_eq!(machine.state(), State::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_open_extends_but_never_shortens() {
        let machine = machine();
        trip(&machine); // open for 10 s
        assert!(!machine.open_remote(Duration::from_secs(2)), "already open");
        assert_eq!(machine.open_remaining(), Some(Duration::from_secs(10)));
        assert!(!machine.open_remote(Duration::from_secs(20)));
        assert_eq!(machine.open_remaining(), Some(Duration::from_secs(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn remote_state_leaves_operator_overrides_alone() {
        let machine = machine();
        for state in [
            State::ForcedOpen,
            State::ForcedClosed,
            State::Disabled,
            State::MetricsOnly,
        ] {
            machine.force(state, false);
            assert!(!machine.open_remote(Duration::from_secs(1)));
            assert!(!machine.close_remote());
            assert_eq!(machine.state(), state);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shut_gate_holds_an_elapsed_open_period() {
        let machine = machine();
        trip(&machine);
        machine.set_probe_gate(true);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(machine.open_remaining(), Some(Duration::ZERO));
        assert_eq!(
            machine.admit(),
            Admission::Rejected(Rejection::for_nanos(
                State::Open,
                to_nanos(machine.config.half_open_max_wait)
            ))
        );
        assert_eq!(machine.state(), State::Open);
        machine.set_probe_gate(false);
        assert!(matches!(
            machine.admit(),
            Admission::Admitted(ticket) if ticket.is_probe()
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_close_ends_open_and_half_open_and_strands_probes() {
        let machine = machine();
        trip(&machine);
        assert!(machine.close_remote());
        assert_eq!(machine.state(), State::Closed);
        assert!(!machine.close_remote(), "already closed");

        trip(&machine);
        tokio::time::advance(Duration::from_secs(10)).await;
        let Admission::Admitted(ticket) = machine.admit() else {
            panic!("the elapsed open period admits a probe")
        };
        assert_eq!(machine.state(), State::HalfOpen);
        assert!(machine.close_remote());
        // The probe's late failure judged a period that has ended.
        fail(&machine, ticket);
        assert_eq!(machine.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_open_does_not_grow_the_backoff() {
        let machine = StateMachine::new(
            Config::builder()
                .consecutive_failures(1)
                .open_duration(Duration::from_secs(1))
                .open_backoff(crate::Backoff::exponential(2.0, Duration::from_secs(60)))
                .build()
                .unwrap(),
        );
        machine.open_remote(Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        let Admission::Admitted(ticket) = machine.admit() else {
            panic!("the elapsed open period admits a probe")
        };
        fail(&machine, ticket);
        // The probe's failure is the first local trip: the base duration, not doubled.
        assert_eq!(
            machine.open_remaining(),
            Some(Duration::from_secs(1)),
            "first local trip"
        );
    }
}
