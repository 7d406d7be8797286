//! What every handle on one [`KeyedCircuitBreakers`](crate::keyed::KeyedCircuitBreakers)
//! shares: the shards of the map and the bounds they keep.

use std::collections::hash_map::RandomState;
#[cfg(test)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::RwLock;
use std::time::Duration;

use hashbrown::HashTable;

use crate::clock::Clock;
use crate::config::Config;
use crate::keyed::entry::Entry;

/// Shards of the map: lookups on different shards never touch the same lock.
pub(super) const MAX_SHARDS: usize = 64;
/// Entries a shard should be able to hold before the map is split further.
pub(super) const MIN_SHARD_CAPACITY: usize = 16;

/// The map behind every handle.
pub(super) struct Shared<K> {
    pub(super) config: Config,
    pub(super) shards: Box<[RwLock<Shard<K>>]>,
    pub(super) hasher: RandomState,
    pub(super) shard_capacity: usize,
    pub(super) max_keys: usize,
    pub(super) idle_timeout: Duration,
    pub(super) clock: Clock,
    /// Breakers handed out without being kept because their shard was full of open ones.
    pub(super) overflows: AtomicUsize,
    /// Test hook: `try_acquire` evicts the key between a lookup that found its breaker
    /// not closed and the permit, as another thread may.
    #[cfg(test)]
    pub(super) evict_before_permit: AtomicBool,
}

/// One shard: entries found by their key's hash, so that a lookup hashes the key once
/// (std's `HashMap` would hash it again after the shard was picked).
pub(super) type Shard<K> = HashTable<Entry<K>>;
