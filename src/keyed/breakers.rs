//! [`KeyedCircuitBreakers`]: a bounded, sharded map from key to breaker.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::breaker::{CircuitBreaker, Permit};
use crate::config::Config;
use crate::error::CircuitOpen;
use crate::health::HealthReport;
use crate::keyed::entry::Entry;
use crate::keyed::shared::{Shard, Shared};
use crate::lock::unpoisoned;

/// One breaker per key (per host, per tenant, ...), created on first use, bounded in
/// number and expired when idle.
///
/// The map is split into shards, each behind its own `RwLock`; a lookup of a known key
/// hashes it once (the hash picks the shard and the slot in it) and takes one shard's
/// read lock, so it is O(1) and calls for different
/// keys do not serialize on a global lock. A new key takes its shard's write lock.
///
/// Bounds: at most [`max_keys`] breakers are kept, apart from breakers with calls in
/// flight (see there). When a new key arrives at a full shard, breakers idle for longer
/// than [`idle_timeout`] go first, then the least recently used ones. Two kinds of
/// breakers are never evicted:
/// - one that is open and still within its open duration (or forced open): forgetting
///   it would let traffic through to a sick downstream;
/// - one with calls in flight (a [`Permit`] out, or a response future neither finished
///   nor dropped): their outcomes must reach the breaker the key uses next, or a
///   failure that trips it would be lost.
///
/// If a shard holds nothing but such breakers and some have calls in flight, the new
/// key is kept over the bound, by at most as many keys as have calls in flight; if all
/// of them are holding the circuit open, the new key gets a fresh breaker that is used
/// for this call and not kept.
///
/// A call made through the map ([`try_acquire`](Self::try_acquire), the
/// [`KeyedCircuitBreakerLayer`](crate::KeyedCircuitBreakerLayer)) thus reports to a
/// breaker the map keeps until the call ends (unless [`remove`](Self::remove)d). A
/// handle from [`get_or_insert`](Self::get_or_insert) is the key's breaker only while
/// the map keeps it: calls made through it after it was evicted reach a breaker the
/// map has forgotten.
///
/// Clones share one map.
///
/// [`max_keys`]: crate::keyed::KeyedCircuitBreakersBuilder::max_keys
/// [`idle_timeout`]: crate::keyed::KeyedCircuitBreakersBuilder::idle_timeout
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{Config, KeyedCircuitBreakers, State};
///
/// let breakers = KeyedCircuitBreakers::builder(Config::builder().consecutive_failures(1).build()?)
///     .max_keys(1_000)
///     .idle_timeout(Duration::from_secs(600))
///     .build()?;
/// let sick = breakers.get_or_insert(&"tenant-a".to_owned());
/// sick.try_acquire().unwrap().failure();
/// assert_eq!(breakers.get(&"tenant-a".to_owned()).unwrap().state(), State::Open);
/// assert_eq!(breakers.get_or_insert(&"tenant-b".to_owned()).state(), State::Closed);
/// assert_eq!(breakers.len(), 2);
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
pub struct KeyedCircuitBreakers<K> {
    pub(super) shared: Arc<Shared<K>>,
}

impl<K> KeyedCircuitBreakers<K> {
    /// Default bound on the number of breakers.
    pub const DEFAULT_MAX_KEYS: usize = 10_000;
    /// Default idle time after which a breaker may be evicted.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

    /// The configuration every key's breaker is built from.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The most breakers kept at once.
    pub fn max_keys(&self) -> usize {
        self.shared.max_keys
    }

    /// How many breakers are kept now: at most [`max_keys`](Self::max_keys), plus the
    /// breakers kept over it for calls in flight (see
    /// [`KeyedCircuitBreakersBuilder::max_keys`](crate::keyed::KeyedCircuitBreakersBuilder::max_keys)).
    pub fn len(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|shard| read(shard).len())
            .sum()
    }

    /// Whether no breaker is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many breakers were handed out without being kept, because every breaker of
    /// their shard was holding the circuit open (and none had calls in flight).
    pub fn overflows(&self) -> usize {
        self.shared.overflows.load(Relaxed)
    }

    /// Every kept breaker with its key, in no particular order.
    pub fn breakers(&self) -> Vec<(K, CircuitBreaker)>
    where
        K: Clone,
    {
        let mut all = Vec::new();
        for shard in self.shared.shards.iter() {
            let shard = read(shard);
            all.extend(
                shard
                    .iter()
                    .map(|entry| (entry.key.clone(), entry.breaker.clone())),
            );
        }
        all
    }

    /// The health of every kept breaker, sorted by name.
    pub fn health(&self) -> HealthReport
    where
        K: Clone,
    {
        let mut breakers: Vec<CircuitBreaker> = self
            .breakers()
            .into_iter()
            .map(|(_, breaker)| breaker)
            .collect();
        breakers.sort_by(|a, b| a.name().cmp(b.name()));
        HealthReport::of(breakers.iter())
    }

    /// Evicts every breaker idle for longer than the idle timeout that is neither
    /// holding the circuit open nor in the middle of a call; then, in a shard left over
    /// its share of [`max_keys`](Self::max_keys) by calls that were in flight, the
    /// least recently used breakers until it is back within. Runs on its own whenever a
    /// new key arrives at a full shard; call it from a timer to return memory sooner.
    /// Returns how many were evicted.
    pub fn evict_idle(&self) -> usize {
        let now = self.shared.clock.now();
        self.shared
            .shards
            .iter()
            .map(|shard| self.shared.evict_idle_and_excess(&mut write(shard), now))
            .sum()
    }
}

impl<K: Hash + Eq> KeyedCircuitBreakers<K> {
    /// `key`'s hash and shard.
    #[inline]
    fn locate(&self, key: &K) -> (u64, &RwLock<Shard<K>>) {
        let shards = &self.shared.shards;
        let hash = self.shared.hasher.hash_one(key);
        // The shard count is a power of two. The table places an entry by the hash's low
        // bits and tags it with the top seven: bits 32.. are independent of both.
        (hash, &shards[(hash >> 32) as usize & (shards.len() - 1)])
    }

    /// The breaker kept for `key`, if any. Does not refresh its last-use time.
    pub fn get(&self, key: &K) -> Option<CircuitBreaker> {
        let (hash, shard) = self.locate(key);
        read(shard)
            .find(hash, |entry| entry.key == *key)
            .map(|entry| entry.breaker.clone())
    }

    /// Forgets the breaker of `key` and returns it, calls in flight or not: those
    /// report to the returned breaker, and the key's next call gets a new one.
    pub fn remove(&self, key: &K) -> Option<CircuitBreaker> {
        let (hash, shard) = self.locate(key);
        let mut shard = write(shard);
        let found = shard.find_entry(hash, |entry| entry.key == *key).ok()?;
        Some(found.remove().0.breaker)
    }

    /// The breaker of `key`, created if there is none, marked as used. A known key
    /// costs one hash and one shard read lock; it reads no clock.
    ///
    /// The handle is the key's breaker while the map keeps it. Holding it does not keep
    /// the breaker from being evicted (its calls in flight do): to guard calls, prefer
    /// [`try_acquire`](Self::try_acquire), which always reaches the kept breaker.
    pub fn get_or_insert(&self, key: &K) -> CircuitBreaker
    where
        K: Clone + fmt::Display,
    {
        self.with_breaker(key, CircuitBreaker::clone)
    }

    /// Asks `key`'s breaker (created if there is none, marked as used) to make one
    /// call: [`CircuitBreaker::try_acquire`] without handing out a clone of the
    /// breaker. A known key costs one hash and one shard read lock, and neither reads
    /// the clock nor touches the breaker's reference count.
    ///
    /// The permit keeps the breaker from being evicted until it is reported or dropped,
    /// so the call's outcome (a trip) reaches the breaker the key's next call uses.
    ///
    /// ```
    /// use tower_circuit_breaker::{Config, KeyedCircuitBreakers, State};
    ///
    /// let breakers = KeyedCircuitBreakers::new(Config::builder().consecutive_failures(1).build()?);
    /// breakers.try_acquire(&"tenant-a").expect("a new breaker is closed").failure();
    /// let open = breakers.try_acquire(&"tenant-a").unwrap_err();
    /// assert_eq!(open.state, State::Open);
    /// assert!(breakers.try_acquire(&"tenant-b").is_ok());
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self, key: &K) -> Result<Permit, CircuitOpen>
    where
        K: Clone + fmt::Display,
    {
        // A closed breaker admits under the shard's lock: its permit, which keeps it
        // from being evicted, exists before the lock is released. Any other state may
        // transition and log: that runs on a clone, after the lock is released. The
        // permit then keeps the breaker kept, but the breaker may have been evicted
        // between the lookup and the permit, and the call's outcome would reach a
        // breaker the key no longer uses. In that rare case the permit is given back
        // unused and the lookup starts over: it finds the key's new breaker or makes
        // one (closed: it admits under the lock).
        // A loop rather than a call returning the permit: merging two permits returned
        // through memory cost the closed path ~2.5 ns in `benches/keyed.rs`.
        loop {
            let closed = self.with_breaker(key, |breaker| {
                breaker.try_acquire_closed().ok_or_else(|| breaker.clone())
            });
            let breaker = match closed {
                Ok(permit) => return Ok(permit),
                Err(breaker) => breaker,
            };
            #[cfg(test)]
            if self.shared.evict_before_permit.swap(false, Relaxed) {
                self.remove(key);
            }
            let permit = breaker.try_acquire()?;
            if self.keeps(key, &breaker) {
                return Ok(permit);
            }
        }
    }

    /// Whether `breaker` is the one kept for `key`.
    #[cold]
    #[inline(never)]
    fn keeps(&self, key: &K, breaker: &CircuitBreaker) -> bool {
        let (hash, shard) = self.locate(key);
        read(shard)
            .find(hash, |entry| entry.key == *key)
            .is_some_and(|entry| entry.breaker.is_same_breaker(breaker))
    }

    /// Runs `use_breaker` on `key`'s breaker, created if there is none, marked as used,
    /// under its shard's lock: a permit it takes exists before anyone can evict the
    /// breaker.
    #[inline]
    fn with_breaker<R>(&self, key: &K, use_breaker: impl FnOnce(&CircuitBreaker) -> R) -> R
    where
        K: Clone + fmt::Display,
    {
        let (hash, shard) = self.locate(key);
        if let Some(entry) = read(shard).find(hash, |entry| entry.key == *key) {
            entry.touch();
            return use_breaker(&entry.breaker);
        }
        self.insert(hash, shard, key, use_breaker)
    }

    #[cold]
    #[inline(never)]
    fn insert<R>(
        &self,
        hash: u64,
        shard: &RwLock<Shard<K>>,
        key: &K,
        use_breaker: impl FnOnce(&CircuitBreaker) -> R,
    ) -> R
    where
        K: Clone + fmt::Display,
    {
        let shared = &*self.shared;
        let mut map = write(shard);
        if let Some(entry) = map.find(hash, |entry| entry.key == *key) {
            entry.touch();
            return use_breaker(&entry.breaker);
        }
        let now = shared.clock.now();
        let breaker = CircuitBreaker::new(
            shared
                .config
                .clone()
                .renamed(format!("{}/{key}", shared.config.name)),
        );
        if map.len() >= shared.shard_capacity && !shared.make_room(&mut map, now) {
            drop(map);
            shared.overflows.fetch_add(1, Relaxed);
            return use_breaker(&breaker);
        }
        // Still under the lock: a permit taken now keeps the new breaker from being
        // evicted (by a new key in this shard) before its call is made.
        let used = use_breaker(&breaker);
        let entry = Entry {
            key: key.clone(),
            hash,
            breaker,
            touched: AtomicBool::new(false),
            last_used: now,
        };
        map.insert_unique(hash, entry, |entry| entry.hash);
        used
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Entries are inserted and removed whole: the map is valid after any panic.
    unpoisoned(lock.read())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    unpoisoned(lock.write())
}

impl<K> Clone for KeyedCircuitBreakers<K> {
    fn clone(&self) -> Self {
        KeyedCircuitBreakers {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for KeyedCircuitBreakers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakers")
            .field("name", &self.shared.config.name())
            .field("len", &self.len())
            .field("max_keys", &self.shared.max_keys)
            .field("idle_timeout", &self.shared.idle_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    fn breakers() -> KeyedCircuitBreakers<String> {
        KeyedCircuitBreakers::new(Config::builder().consecutive_failures(1).build().unwrap())
    }

    #[test]
    fn a_permit_taken_outside_the_lock_from_an_evicted_breaker_is_taken_again_from_the_kept_one() {
        let breakers = breakers();
        let key = "tenant".to_owned();
        // Not closed: `try_acquire` admits on a clone, outside the shard's lock.
        let looked_up = breakers.get_or_insert(&key);
        looked_up.force_closed();
        breakers.shared.evict_before_permit.store(true, Relaxed);
        let permit = breakers.try_acquire(&key).expect("a new breaker admits");
        permit.failure();
        let kept = breakers.get(&key).expect("the key is kept again");
        assert!(!kept.is_same_breaker(&looked_up));
        assert_eq!(kept.state(), State::Open, "the failure reached it");
        let forgotten = looked_up.metrics();
        assert_eq!((forgotten.failures, forgotten.ignored), (0, 1));
    }

    #[test]
    fn a_permit_taken_outside_the_lock_from_the_kept_breaker_is_kept() {
        let breakers = breakers();
        let key = "tenant".to_owned();
        breakers.get_or_insert(&key).force_closed();
        breakers.try_acquire(&key).expect("forced closed").failure();
        let kept = breakers.get(&key).unwrap();
        assert_eq!(kept.state(), State::ForcedClosed);
        assert_eq!(kept.metrics().failures, 1);
        assert_eq!(breakers.len(), 1);
    }
}
