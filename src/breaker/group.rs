//! The door's methods for a group of endpoint breakers (`crate::balance`): membership
//! in the group's ejection cap, and the group's fail-fast check.

use std::sync::Arc;

use super::{CircuitBreaker, EjectionBudget, Rejection};
use crate::config::Config;
use crate::core::machine::StateMachine;

impl CircuitBreaker {
    /// A new breaker, closed, that is a member of the group whose ejections `budget`
    /// caps.
    pub(crate) fn in_group(config: Config, budget: Arc<EjectionBudget>) -> CircuitBreaker {
        CircuitBreaker::from_machine(StateMachine::in_group(config, budget))
    }

    /// Leaves the breaker's group: it no longer counts toward the cap.
    pub(crate) fn leave_group(&self) {
        self.machine.leave_group();
    }

    /// Whether a call made now would be refused because the breaker is out of rotation,
    /// and for how long (see `StateMachine::refusal`). A pure read.
    pub(crate) fn refusal(&self) -> Option<Rejection> {
        self.machine.refusal(self.machine.clock.now())
    }
}
