//! What a shard of [`KeyedCircuitBreakers`](crate::keyed::KeyedCircuitBreakers) keeps
//! per key.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::breaker::CircuitBreaker;
use crate::clock::Nanos;

/// A kept breaker and its key. Use is tracked CLOCK-style so that a hit reads no clock and
/// writes nothing shared once its bit is set: a hit sets `touched`; a sweep (under
/// the shard's write lock) turns a set bit into `last_used = now` and clears it. A
/// breaker therefore never looks idler than it is; it may look busier, by up to the
/// time since the previous sweep.
pub(super) struct Entry<K> {
    pub(super) key: K,
    /// The key's hash, so that growing the shard rehashes nothing.
    pub(super) hash: u64,
    pub(super) breaker: CircuitBreaker,
    pub(super) touched: AtomicBool,
    /// When the breaker was last seen in use, as of the latest sweep.
    pub(super) last_used: Nanos,
}

impl<K> Entry<K> {
    #[inline]
    pub(super) fn touch(&self) {
        if !self.touched.load(Relaxed) {
            self.touched.store(true, Relaxed);
        }
    }

    /// Folds a hit since the previous sweep into `last_used`.
    pub(super) fn sweep(&mut self, now: Nanos) {
        if std::mem::take(self.touched.get_mut()) {
            self.last_used = now;
        }
    }
}

impl<K> Entry<K> {
    /// Whether the breaker may be forgotten: no call in flight, and not holding the
    /// circuit open. Calls first: finding none means seeing what they recorded, so a
    /// call that just tripped the breaker is seen holding it open.
    pub(super) fn is_evictable(&self) -> bool {
        !self.breaker.has_calls_in_flight() && !self.breaker.is_holding_open()
    }
}
