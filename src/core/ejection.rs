//! The ejection cap of a group of endpoint breakers: how many members may be out of
//! rotation (open, half-open or forced open) at once.
//!
//! The [`EjectionBudget`] is shared by the members' state machines. A member's trip
//! reserves a slot in it first ([`EjectionBudget::try_eject`]); a trip that would exceed
//! the cap is refused and the member stays closed. Where a member stands, its [`Seat`],
//! changes only under that member's transition lock, so a member is counted at most
//! once however its transitions and its removal from the group interleave.

use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::core::sync::{AtomicU32, AtomicU64};

/// The counts of one group, shared by its members.
#[derive(Debug)]
pub(crate) struct EjectionBudget {
    /// Members in the group now.
    members: AtomicU32,
    /// Members out of rotation now: open, half-open or forced open.
    ejected: AtomicU32,
    /// Trips refused because they would have exceeded the cap.
    capped: AtomicU64,
    /// The cap, in percent of the members (0..=100; one member may always be out).
    max_percent: u32,
    /// Woken whenever a member leaves or returns to rotation.
    pub(crate) changed: Arc<Notify>,
}

/// A refused ejection: the members out and the most that may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capped {
    pub(crate) ejected: u32,
    pub(crate) allowed: u32,
}

impl EjectionBudget {
    pub(crate) fn new(max_percent: u32) -> EjectionBudget {
        EjectionBudget {
            members: AtomicU32::new(0),
            ejected: AtomicU32::new(0),
            capped: AtomicU64::new(0),
            max_percent,
            changed: Arc::new(Notify::new()),
        }
    }

    /// The most members that may be out among `members`: the cap's share, rounded
    /// down, and always at least one (as Envoy's outlier detection counts it).
    pub(crate) fn allowed(&self, members: u32) -> u32 {
        let share = u64::from(members) * u64::from(self.max_percent) / 100;
        (share as u32).max(1)
    }

    pub(crate) fn max_percent(&self) -> u32 {
        self.max_percent
    }

    pub(crate) fn members(&self) -> u32 {
        self.members.load(Acquire)
    }

    pub(crate) fn ejected(&self) -> u32 {
        self.ejected.load(Acquire)
    }

    pub(crate) fn capped(&self) -> u64 {
        self.capped.load(Acquire)
    }

    pub(crate) fn join(&self) {
        self.members.fetch_add(1, AcqRel);
    }

    fn leave(&self) {
        self.members.fetch_sub(1, AcqRel);
    }

    /// Takes an ejection slot if the cap allows one more.
    fn try_eject(&self) -> Result<(), Capped> {
        let mut ejected = self.ejected.load(Acquire);
        loop {
            let allowed = self.allowed(self.members());
            if ejected >= allowed {
                self.capped.fetch_add(1, Relaxed);
                return Err(Capped { ejected, allowed });
            }
            match self
                .ejected
                .compare_exchange(ejected, ejected + 1, AcqRel, Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => ejected = actual,
            }
        }
    }

    /// Takes a slot whatever the cap (a way out the member's rules did not decide: a
    /// fleet's open, an operator's).
    fn eject_uncapped(&self) {
        self.ejected.fetch_add(1, AcqRel);
    }

    fn restore(&self) {
        self.ejected.fetch_sub(1, AcqRel);
    }
}

/// Where one member stands in its group. Kept under the member's transition lock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seat {
    /// Not (or no longer) a member: nothing is counted.
    #[default]
    Outside,
    /// A member in rotation.
    InRotation,
    /// A member counted as out of rotation.
    Ejected,
}

impl Seat {
    /// A trip of a member in rotation: takes a slot within the cap. `Ok` when the trip
    /// may go ahead (a breaker outside any group always may).
    pub(crate) fn try_eject(&mut self, budget: &EjectionBudget) -> Result<(), Capped> {
        if *self == Seat::InRotation {
            budget.try_eject()?;
            *self = Seat::Ejected;
        }
        Ok(())
    }

    /// The member left rotation without a trip of its own (a fleet's open, an
    /// operator's): counted, whatever the cap. Nothing if a trip already took its slot.
    pub(crate) fn eject(&mut self, budget: &EjectionBudget) {
        if *self == Seat::InRotation {
            budget.eject_uncapped();
            *self = Seat::Ejected;
        }
    }

    /// The member is back in rotation (closed, or set by hand): its slot is free.
    pub(crate) fn restore(&mut self, budget: &EjectionBudget) {
        if *self == Seat::Ejected {
            budget.restore();
            *self = Seat::InRotation;
        }
    }

    /// The member leaves the group, freeing its slot if it held one.
    pub(crate) fn leave(&mut self, budget: &EjectionBudget) {
        if *self == Seat::Ejected {
            budget.restore();
        }
        if *self != Seat::Outside {
            budget.leave();
        }
        *self = Seat::Outside;
    }
}

#[cfg(all(test, not(tcb_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_cap_rounds_down_and_always_allows_one() {
        let budget = EjectionBudget::new(10);
        assert_eq!(budget.allowed(4), 1);
        assert_eq!(budget.allowed(19), 1);
        assert_eq!(budget.allowed(20), 2);
        let half = EjectionBudget::new(50);
        assert_eq!((half.allowed(4), half.allowed(5)), (2, 2));
        assert_eq!(EjectionBudget::new(100).allowed(4), 4);
        assert_eq!(EjectionBudget::new(100).allowed(0), 1);
    }

    #[test]
    fn seats_count_each_member_once() {
        let budget = EjectionBudget::new(50);
        let mut seats = [Seat::InRotation; 4];
        for _ in &seats {
            budget.join();
        }
        assert!(seats[0].try_eject(&budget).is_ok());
        assert!(
            seats[0].try_eject(&budget).is_ok(),
            "already out: no new slot"
        );
        assert!(seats[1].try_eject(&budget).is_ok());
        let capped = seats[2].try_eject(&budget).unwrap_err();
        assert_eq!(
            capped,
            Capped {
                ejected: 2,
                allowed: 2
            }
        );
        assert_eq!((budget.ejected(), budget.capped()), (2, 1));
        seats[2].eject(&budget); // a fleet's open is counted regardless
        assert_eq!(budget.ejected(), 3);
        seats[0].leave(&budget);
        assert_eq!((budget.members(), budget.ejected()), (3, 2));
        seats[0].restore(&budget); // outside: nothing to restore
        seats[1].restore(&budget);
        seats[1].restore(&budget);
        assert_eq!(budget.ejected(), 1);
        assert_eq!(seats[1], Seat::InRotation);
    }
}
