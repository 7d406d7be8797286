//! The timer of a backpressure wait, when the runtime has one.
//!
//! Tokio's `sleep_until` panics in a runtime built without `enable_time`, and Tokio
//! offers no way to ask first. A breaker that panicked there at its first trip would
//! turn a missing builder call into a crash in production, so the first sleep in such
//! a runtime is tried under `catch_unwind`: the service then logs a warning naming the
//! fix and rejects as in the default mode, and this thread skips that runtime's timer
//! from then on. (Tokio's panic message is still printed once, by the panic hook; with
//! `panic = "abort"` the process aborts as before.)

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::runtime::{self, Handle};
use tokio::time::{Instant, Sleep};

thread_local! {
    /// The last runtime this thread found without timers.
    static TIMERLESS: Cell<Option<runtime::Id>> = const { Cell::new(None) };
}

/// Whether a wait can be timed here: inside a Tokio runtime not known to lack timers.
pub(crate) fn may_wait() -> bool {
    match Handle::try_current() {
        Ok(handle) => TIMERLESS.with(Cell::get) != Some(handle.id()),
        Err(_) => false,
    }
}

/// A sleep until `deadline` on the current runtime's timer, or `None` when the runtime
/// has no timer (or there is no runtime).
pub(crate) fn sleep_until(deadline: Instant) -> Option<Sleep> {
    let handle = Handle::try_current().ok()?;
    if TIMERLESS.with(Cell::get) == Some(handle.id()) {
        return None;
    }
    match catch_unwind(AssertUnwindSafe(|| tokio::time::sleep_until(deadline))) {
        Ok(sleep) => Some(sleep),
        Err(_) => {
            TIMERLESS.with(|timerless| timerless.set(Some(handle.id())));
            tracing::warn!(
                "circuit breaker: this Tokio runtime has no timer (build it with \
                 `enable_time()` or `enable_all()`), so a service that waits while its \
                 breaker rejects (backpressure, or an endpoint behind a balancer) \
                 returns the rejection at once instead"
            );
            None
        }
    }
}
