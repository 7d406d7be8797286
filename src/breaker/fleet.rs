//! The fleet sync's door into the state machine (feature `redis`, see `crate::fleet`):
//! the hooks through which state from other instances enters, none of them on a
//! per-call path.

use std::time::Duration;

use super::CircuitBreaker;
use super::TransitionReason;
use crate::state::State;

/// The fleet sync's hooks (see `crate::fleet`), none of them on a per-call path.
impl CircuitBreaker {
    /// The stored state: an ended open period is still `Open` here until a call moves
    /// it on (unlike [`state`](Self::state)).
    pub(crate) fn stored_state(&self) -> State {
        self.machine.state()
    }

    /// Opens for `remaining` because another instance opened; see
    /// `StateMachine::open_remote`. Returns whether a transition happened.
    pub(crate) fn open_remote(&self, remaining: Duration) -> bool {
        self.machine.open_remote(remaining)
    }

    /// Closes an open or half-open breaker because another instance's probes
    /// succeeded. Returns whether a transition happened.
    pub(crate) fn close_remote(&self) -> bool {
        self.machine.close_remote()
    }

    /// Shuts (`true`) or opens (`false`) the probe gate.
    pub(crate) fn set_probe_gate(&self, shut: bool) {
        self.machine.set_probe_gate(shut);
    }

    /// Whether the probe gate is shut.
    pub(crate) fn probe_gate_shut(&self) -> bool {
        self.machine.probe_gate_shut()
    }

    /// The stored state, its generation and why it was entered, read consistently.
    pub(crate) fn last_transition(&self) -> (State, u32, Option<TransitionReason>) {
        self.machine.last_transition()
    }

    /// While open: how long until the open period ends (zero once it has).
    pub(crate) fn open_remaining(&self) -> Option<Duration> {
        self.machine.open_remaining()
    }

    /// See `StateMachine::probe_due_in`.
    pub(crate) fn probe_due_in(&self) -> Option<Duration> {
        self.machine.probe_due_in()
    }
}
