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
/// kept. When a new key arrives at a full shard, breakers idle for longer than
/// [`idle_timeout`](KeyedCircuitBreakersBuilder::idle_timeout) go first, then the least
/// recently used one. A breaker that is open and still within its open duration (or
/// forced open) is never evicted: forgetting it would let traffic through to a sick
/// downstream. If a shard holds nothing but such breakers, the new key gets a fresh
/// breaker that is used for this call and not kept.
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
    /// The most breakers kept at once (default 10 000, at least 1). The map is split
    /// into shards of `max_keys / shards` entries each, so the bound holds exactly.
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

    /// How many breakers are kept now (never more than [`max_keys`](Self::max_keys)).
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
    /// their shard was holding the circuit open.
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

    /// Evicts every breaker idle for longer than the idle timeout that is not holding
    /// the circuit open. Runs on its own whenever a new key arrives at a full shard;
    /// call it from a timer to return memory sooner. Returns how many were evicted.
    pub fn evict_idle(&self) -> usize {
        let now = self.shared.clock.now();
        self.shared
            .shards
            .iter()
            .map(|shard| self.shared.evict_idle(&mut write(shard), now))
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

    /// Forgets the breaker of `key` and returns it.
    pub fn remove(&self, key: &K) -> Option<CircuitBreaker> {
        let (hash, shard) = self.locate(key);
        let mut shard = write(shard);
        let found = shard.find_entry(hash, |entry| entry.key == *key).ok()?;
        Some(found.remove().0.breaker)
    }

    /// The breaker of `key`, created if there is none, marked as used. A known key
    /// costs one hash and one shard read lock; it reads no clock.
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
        // A closed breaker admits under the shard's read lock. Any other state may
        // transition and log: that runs on a clone, after the lock is released.
        let closed = self.with_breaker(key, |breaker| {
            breaker.try_acquire_closed().ok_or_else(|| breaker.clone())
        });
        closed.or_else(|breaker| breaker.try_acquire())
    }

    /// Runs `use_breaker` on `key`'s breaker, created if there is none, marked as used;
    /// a kept breaker is used under its shard's read lock.
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
        use_breaker(&self.insert(hash, shard, key))
    }

    #[cold]
    #[inline(never)]
    fn insert(&self, hash: u64, shard: &RwLock<Shard<K>>, key: &K) -> CircuitBreaker
    where
        K: Clone + fmt::Display,
    {
        let shared = &*self.shared;
        let mut map = write(shard);
        let now = shared.clock.now();
        if let Some(entry) = map.find(hash, |entry| entry.key == *key) {
            return entry.breaker.clone();
        }
        let breaker = CircuitBreaker::new(Config {
            name: Arc::from(format!("{}/{key}", shared.config.name)),
            ..shared.config.clone()
        });
        if map.len() >= shared.shard_capacity {
            shared.evict_idle(&mut map, now);
        }
        if map.len() >= shared.shard_capacity && !shared.evict_least_recently_used(&mut map) {
            shared.overflows.fetch_add(1, Relaxed);
            return breaker;
        }
        let entry = Entry {
            key: key.clone(),
            hash,
            breaker: breaker.clone(),
            touched: AtomicBool::new(false),
            last_used: now,
        };
        map.insert_unique(hash, entry, |entry| entry.hash);
        breaker
    }
}

impl<K> Shared<K> {
    fn evict_idle(&self, map: &mut Shard<K>, now: Nanos) -> usize {
        let before = map.len();
        let idle = to_nanos(self.idle_timeout);
        map.retain(|entry| {
            entry.sweep(now);
            now.saturating_sub(entry.last_used) < idle || entry.breaker.is_holding_open()
        });
        before - map.len()
    }

    /// Evicts the least recently used breaker that is not holding the circuit open.
    /// Runs right after [`evict_idle`](Self::evict_idle), which swept every entry.
    fn evict_least_recently_used(&self, map: &mut Shard<K>) -> bool {
        let evictable = |entry: &Entry<K>| !entry.breaker.is_holding_open();
        loop {
            let oldest = map
                .iter()
                .filter(|entry| evictable(entry))
                .min_by_key(|entry| entry.last_used)
                .map(|entry| (entry.hash, entry.last_used));
            let Some((hash, last_used)) = oldest else {
                return false;
            };
            // Any entry of that hash and use time is an equally good victim. None is
            // found only if the chosen breaker tripped open since: look again.
            if let Ok(found) = map.find_entry(hash, |entry| {
                entry.hash == hash && entry.last_used == last_used && evictable(entry)
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
