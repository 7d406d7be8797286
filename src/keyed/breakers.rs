//! [`KeyedCircuitBreakers`]: a bounded, sharded map from key to breaker.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hashbrown::HashTable;

use crate::clock::{to_nanos, Clock, Nanos};
use crate::{CircuitBreaker, CircuitOpen, Config, ConfigError, HealthReport, Permit};

/// Shards of the map: lookups on different shards never touch the same lock.
const MAX_SHARDS: usize = 64;
/// Entries a shard should be able to hold before the map is split further.
const MIN_SHARD_CAPACITY: usize = 16;

/// One breaker per key (per host, per tenant, ...), created on first use, bounded in
/// number and expired when idle.
///
/// The map is split into shards, each behind its own `RwLock`; a lookup of a known key
/// hashes it once (the hash picks the shard and the slot in it) and takes one shard's
/// read lock, so it is O(1) and calls for different
/// keys do not serialize on a global lock. A new key takes its shard's write lock.
///
/// Bounds: at most [`max_keys`](KeyedCircuitBreakersBuilder::max_keys) breakers are
/// kept, apart from breakers with calls in flight (see there). When a new key arrives
/// at a full shard, breakers idle for longer than
/// [`idle_timeout`](KeyedCircuitBreakersBuilder::idle_timeout) go first, then the least
/// recently used ones. Two kinds of breakers are never evicted:
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
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    config: Config,
    shards: Box<[RwLock<Shard<K>>]>,
    hasher: RandomState,
    shard_capacity: usize,
    max_keys: usize,
    idle_timeout: Duration,
    clock: Clock,
    /// Breakers handed out without being kept because their shard was full of open ones.
    overflows: AtomicUsize,
    /// Test hook: `try_acquire` evicts the key between a lookup that found its breaker
    /// not closed and the permit, as another thread may.
    #[cfg(test)]
    evict_before_permit: AtomicBool,
}

/// One shard: entries found by their key's hash, so that a lookup hashes the key once
/// (std's `HashMap` would hash it again after the shard was picked).
type Shard<K> = HashTable<Entry<K>>;

/// A kept breaker and its key. Use is tracked CLOCK-style so that a hit reads no clock and
/// writes nothing shared once its bit is set: a hit sets `touched`; a sweep (under
/// the shard's write lock) turns a set bit into `last_used = now` and clears it. A
/// breaker therefore never looks idler than it is; it may look busier, by up to the
/// time since the previous sweep.
struct Entry<K> {
    key: K,
    /// The key's hash, so that growing the shard rehashes nothing.
    hash: u64,
    breaker: CircuitBreaker,
    touched: AtomicBool,
    /// When the breaker was last seen in use, as of the latest sweep.
    last_used: Nanos,
}

impl<K> Entry<K> {
    #[inline]
    fn touch(&self) {
        if !self.touched.load(Relaxed) {
            self.touched.store(true, Relaxed);
        }
    }

    /// Folds a hit since the previous sweep into `last_used`.
    fn sweep(&mut self, now: Nanos) {
        if std::mem::take(self.touched.get_mut()) {
            self.last_used = now;
        }
    }
}

/// Builds [`KeyedCircuitBreakers`]; see [`KeyedCircuitBreakers::builder`].
#[must_use]
pub struct KeyedCircuitBreakersBuilder<K> {
    config: Config,
    max_keys: usize,
    idle_timeout: Duration,
    key: PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for KeyedCircuitBreakersBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakersBuilder")
            .field("config", &self.config)
            .field("max_keys", &self.max_keys)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl<K> KeyedCircuitBreakersBuilder<K> {
    /// The most breakers kept at once (default 10 000, at least 1), apart from breakers
    /// with calls in flight. The map is split into shards of `max_keys / shards`
    /// entries each, and each shard keeps to its share.
    ///
    /// A breaker with a call in flight (a [`Permit`] out, or a response future neither
    /// finished nor dropped) is never evicted, nor is one holding the circuit open: the
    /// call's outcome must reach the breaker the key uses next, or a trip would be
    /// lost. When a new key arrives at a shard holding nothing but such breakers:
    /// - if some have calls in flight, the key is kept over the bound: a shard goes
    ///   over its share by at most the number of its breakers with calls in flight when
    ///   it takes the key. [`len`](KeyedCircuitBreakers::len) therefore exceeds
    ///   `max_keys` by at most the sum, over the shards, of the keys with calls in
    ///   flight when the shard last took a new key. Those breakers stay in memory
    ///   anyway while their calls hold them; the map adds an entry each.
    /// - if all are holding the circuit open, the key gets a breaker that is used for
    ///   its call and not kept (see [`overflows`](KeyedCircuitBreakers::overflows)).
    ///
    /// Calls that end shrink nothing by themselves: the excess is evicted (idle, then
    /// least recently used, never one holding the circuit open) at the shard's next new
    /// key or at [`evict_idle`](KeyedCircuitBreakers::evict_idle).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// A breaker unused for this long may be evicted (default 10 minutes), unless it is
    /// holding the circuit open. Use is noticed by sweeps (when a new key arrives at a
    /// full shard, or [`evict_idle`](KeyedCircuitBreakers::evict_idle) runs), so a
    /// breaker is never evicted early but may outlive its idle time by up to the time
    /// between two sweeps.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Validates the bounds.
    pub fn build(self) -> Result<KeyedCircuitBreakers<K>, ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::invalid("max_keys", 0, "must be at least 1"));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "idle_timeout",
                self.idle_timeout,
                "must be longer than zero",
            ));
        }
        // A power of two, with at least MIN_SHARD_CAPACITY entries per shard when
        // max_keys allows, so one shard's hash collisions do not evict early.
        let shards = MAX_SHARDS.min(1 << (self.max_keys / MIN_SHARD_CAPACITY).max(1).ilog2());
        Ok(KeyedCircuitBreakers {
            shared: Arc::new(Shared {
                config: self.config,
                shards: (0..shards).map(|_| RwLock::default()).collect(),
                hasher: RandomState::new(),
                shard_capacity: self.max_keys / shards,
                max_keys: self.max_keys,
                idle_timeout: self.idle_timeout,
                clock: Clock::new(),
                overflows: AtomicUsize::new(0),
                #[cfg(test)]
                evict_before_permit: AtomicBool::new(false),
            }),
        })
    }
}

impl<K> KeyedCircuitBreakers<K> {
    /// Default bound on the number of breakers.
    pub const DEFAULT_MAX_KEYS: usize = 10_000;
    /// Default idle time after which a breaker may be evicted.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

    /// A builder: every key's breaker is built from `config`, named
    /// `"{config name}/{key}"`.
    pub fn builder(config: Config) -> KeyedCircuitBreakersBuilder<K> {
        KeyedCircuitBreakersBuilder {
            config,
            max_keys: Self::DEFAULT_MAX_KEYS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            key: PhantomData,
        }
    }

    /// A map with the default bounds.
    pub fn new(config: Config) -> KeyedCircuitBreakers<K> {
        Self::builder(config)
            .build()
            .expect("the default bounds are valid")
    }

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
    /// [`KeyedCircuitBreakersBuilder::max_keys`]).
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
            .is_some_and(|entry| Arc::ptr_eq(entry.breaker.machine(), breaker.machine()))
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
        let breaker = CircuitBreaker::new(Config {
            name: Arc::from(format!("{}/{key}", shared.config.name)),
            ..shared.config.clone()
        });
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

impl<K> Entry<K> {
    /// Whether the breaker may be forgotten: no call in flight, and not holding the
    /// circuit open. Calls first: finding none means seeing what they recorded, so a
    /// call that just tripped the breaker is seen holding it open.
    fn is_evictable(&self) -> bool {
        !self.breaker.has_calls_in_flight() && !self.breaker.is_holding_open()
    }
}

impl<K> Shared<K> {
    /// Makes room for a new entry in a full shard: evicts idle breakers, then the least
    /// recently used ones until the shard is under its share, never one holding the
    /// circuit open or with calls in flight. If only such breakers are left, the shard
    /// takes the entry anyway while it is over its share by fewer than the breakers
    /// with calls in flight; returns whether it takes it.
    fn make_room(&self, map: &mut Shard<K>, now: Nanos) -> bool {
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
    fn evict_idle_and_excess(&self, map: &mut Shard<K>, now: Nanos) -> usize {
        let mut evicted = self.evict_idle(map, now);
        while map.len() > self.shard_capacity && self.evict_least_recently_used(map) {
            evicted += 1;
        }
        evicted
    }

    fn evict_idle(&self, map: &mut Shard<K>, now: Nanos) -> usize {
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
    fn evict_least_recently_used(&self, map: &mut Shard<K>) -> bool {
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

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Entries are inserted and removed whole: the map is valid after any panic.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
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
    use crate::State;

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
        assert!(!Arc::ptr_eq(kept.machine(), looked_up.machine()));
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
