//! The crate-internal half of [`CircuitBreaker`]: the only way the rest of the crate
//! reaches the state machine and the lanes: admission and permits for the Tower glue
//! (`crate::middleware`), the eviction checks of keyed breakers (the fleet sync's
//! hooks are in `breaker::fleet`). Each method forwards to `core` and is `#[inline]`
//! where the call path uses it, so that the door costs nothing.

use std::sync::Arc;

use tokio::sync::futures::OwnedNotified;

use super::{Admission, CircuitBreaker, Permit, Rejection, Ticket};
use crate::core::lane::Lane;
use crate::error::CircuitOpen;

/// Admission and permits.
impl CircuitBreaker {
    /// Decides whether a call may go ahead now. The closed case is one load, inlined
    /// into the caller; every other state takes the out-of-line path.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        self.machine.admit()
    }

    /// The closed case of [`admit`](Self::admit) alone: two loads of one cache line,
    /// `None` in every other state and while ramping up (which then need
    /// [`admit`](Self::admit)).
    #[inline]
    pub(crate) fn admit_closed(&self) -> Option<Ticket> {
        self.machine.admit_closed()
    }

    /// Whether the breaker is still in the period `ticket` was issued in.
    #[inline]
    pub(crate) fn is_current(&self, ticket: Ticket) -> bool {
        self.machine.is_current(ticket)
    }

    /// The permit of an admission whose call is not made yet (a half-open probe's slot,
    /// held from `poll_ready` to `call`): neither used nor timed until
    /// [`Permit::mark_used`].
    #[inline]
    pub(crate) fn permit(&self, ticket: Ticket) -> Permit {
        self.lane().permit(ticket)
    }

    /// The permit of a call made now under `ticket`: used, and timed if the breaker
    /// times calls.
    #[inline]
    pub(crate) fn used_permit(&self, ticket: Ticket) -> Permit {
        self.lane().used_permit(ticket)
    }

    /// Counts a rejection decided earlier, and builds the error the caller gets.
    #[inline]
    pub(crate) fn reject(&self, rejection: Rejection) -> CircuitOpen {
        self.lane().reject(rejection)
    }

    /// [`try_acquire`](Self::try_acquire) while closed, `None` in any other state:
    /// one load and the permit, never a transition, a log line or a clock read.
    #[inline]
    pub(crate) fn try_acquire_closed(&self) -> Option<Permit> {
        let ticket = self.machine.admit_closed()?;
        Some(self.lane().used_permit(ticket))
    }

    /// Whether the breaker is forced open, or open and within its open duration.
    pub(crate) fn is_holding_open(&self) -> bool {
        self.machine.is_holding_open()
    }

    /// Whether a permit of this breaker is out: a call in flight whose outcome is still
    /// to be recorded. Reads a reference count per lane; writes nothing. A caller that
    /// finds none also sees every outcome they recorded.
    pub(crate) fn has_calls_in_flight(&self) -> bool {
        self.lanes.has_permits_out()
    }

    /// Whether `other` is a handle on this very breaker (the same shared state), not
    /// merely one configured alike.
    #[inline]
    pub(crate) fn is_same_breaker(&self, other: &CircuitBreaker) -> bool {
        Arc::ptr_eq(&self.machine, &other.machine)
    }

    #[inline]
    pub(crate) fn lane(&self) -> &Arc<Lane> {
        self.lanes.current(&self.machine)
    }

    /// A future that completes at the breaker's next state change or returned probe
    /// permit (used by backpressure mode).
    pub(crate) fn changed(&self) -> OwnedNotified {
        Arc::clone(&self.machine.changed).notified_owned()
    }

    /// Whether outcomes feed a sliding window (the rate gauges exist only then).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn has_window(&self) -> bool {
        self.machine.has_window()
    }
}
