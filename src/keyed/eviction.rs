//! How a shard of [`KeyedCircuitBreakers`](crate::keyed::KeyedCircuitBreakers) makes
//! room: idle breakers first, then the least recently used, never one holding the
//! circuit open or with calls in flight.

use crate::clock::{to_nanos, Nanos};
use crate::keyed::shared::{Shard, Shared};

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
    /// [`Entry::is_evictable`](crate::keyed::entry::Entry::is_evictable)). Runs after [`evict_idle`](Self::evict_idle), which
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
