//! What a shard of [`KeyedCircuitBreakers`](crate::keyed::KeyedCircuitBreakers) keeps
//! per key, and how it makes room: idle breakers first, then the least recently used,
//! never one holding the circuit open or with calls in flight.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::breaker::CircuitBreaker;
use crate::clock::{to_nanos, Nanos};
use crate::keyed::breakers::{Shard, Shared};

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

impl<K> Shared<K> {
    /// Makes room for a new entry in a full shard: evicts idle breakers, then the least
    /// recently used ones until the shard is under its share, never one holding the
    /// circuit open or with calls in flight. If only such breakers are left, the shard
    /// takes the entry anyway while it is over its share by fewer than the breakers
    /// with calls in flight; returns whether it takes it.
    pub(super) fn make_room(&self, map: &mut Shard<K>, now: Nanos) -> bool {
        self.evict_idle(map, now);
        while map.len() >= self.shard_capacity {
            if !self.evict_least_recently_used(map) {
                let busy = map
                    .iter()
                    .filter(|entry| entry.breaker.has_calls_in_flight())
                    .count();
                return map.len() < self.shard_capacity + busy;
            }
        }
        true
    }

    /// Evicts the idle breakers, then the least recently used ones while the shard is
    /// over its share (which calls in flight allowed). Returns how many were evicted.
    pub(super) fn evict_idle_and_excess(&self, map: &mut Shard<K>, now: Nanos) -> usize {
        let mut evicted = self.evict_idle(map, now);
        while map.len() > self.shard_capacity && self.evict_least_recently_used(map) {
            evicted += 1;
        }
        evicted
    }

    pub(super) fn evict_idle(&self, map: &mut Shard<K>, now: Nanos) -> usize {
        let before = map.len();
        let idle = to_nanos(self.idle_timeout);
        map.retain(|entry| {
            entry.sweep(now);
            now.saturating_sub(entry.last_used) < idle || !entry.is_evictable()
        });
        before - map.len()
    }

    /// Evicts the least recently used breaker that is evictable (see
    /// [`Entry::is_evictable`]). Runs after [`evict_idle`](Self::evict_idle), which
    /// swept every entry.
    pub(super) fn evict_least_recently_used(&self, map: &mut Shard<K>) -> bool {
        loop {
            // Evictability reads each lane of a breaker: it is checked only for an
            // entry used before the oldest evictable one found so far.
            let mut oldest: Option<(u64, Nanos)> = None;
            for entry in map.iter() {
                if oldest.map_or(true, |(_, last_used)| entry.last_used < last_used)
                    && entry.is_evictable()
                {
                    oldest = Some((entry.hash, entry.last_used));
                }
            }
            let Some((hash, last_used)) = oldest else {
                return false;
            };
            // Any entry of that hash and use time is an equally good victim. None is
            // found only if the chosen breaker tripped open or took a call since (a
            // handle held outside the map): look again.
            if let Ok(found) = map.find_entry(hash, |entry| {
                entry.hash == hash && entry.last_used == last_used && entry.is_evictable()
            }) {
                found.remove();
                return true;
            }
        }
    }
}
