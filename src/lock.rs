//! Taking a lock whatever a panic elsewhere did to it.
//!
//! Every lock in this crate guards data that each critical section leaves valid (maps
//! changed by whole inserts and removes, plain counters, an `Option` replaced whole, or
//! no data at all), so a lock poisoned by a panic in another thread is as good as any:
//! the caller takes it instead of spreading the panic to every later call.

use std::sync::{LockResult, PoisonError};

/// The guard of a lock result, poisoned or not. Works for every lock type whose `lock`,
/// `read` or `write` returns a [`LockResult`] (std's and loom's).
#[inline]
pub(crate) fn unpoisoned<Guard>(result: LockResult<Guard>) -> Guard {
    result.unwrap_or_else(PoisonError::into_inner)
}
