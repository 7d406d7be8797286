//! [`KeyedCircuitBreakersBuilder`]: the bounds of a [`KeyedCircuitBreakers`] map.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::marker::PhantomData;
#[cfg(test)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[cfg(doc)]
use crate::breaker::Permit;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::keyed::breakers::KeyedCircuitBreakers;
use crate::keyed::shared::{Shared, MAX_SHARDS, MIN_SHARD_CAPACITY};

/// Builds [`KeyedCircuitBreakers`]; see [`KeyedCircuitBreakers::builder`].
#[must_use]
pub struct KeyedCircuitBreakersBuilder<K> {
    config: Config,
    max_keys: usize,
    idle_timeout: Duration,
    key: PhantomData<fn() -> K>,
}

/// The map's constructors, beside the bounds they take.
impl<K> KeyedCircuitBreakers<K> {
    /// A builder: every key's breaker is built from `config`, named
    /// `"{config name}/{key}"`.
    pub fn builder(config: Config) -> KeyedCircuitBreakersBuilder<K> {
        KeyedCircuitBreakersBuilder::new(config)
    }

    /// A map with the default bounds.
    pub fn new(config: Config) -> KeyedCircuitBreakers<K> {
        Self::builder(config)
            .build()
            .expect("the default bounds are valid")
    }
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
    /// The builder of [`KeyedCircuitBreakers::builder`], with the default bounds.
    pub(super) fn new(config: Config) -> Self {
        KeyedCircuitBreakersBuilder {
            config,
            max_keys: KeyedCircuitBreakers::<K>::DEFAULT_MAX_KEYS,
            idle_timeout: KeyedCircuitBreakers::<K>::DEFAULT_IDLE_TIMEOUT,
            key: PhantomData,
        }
    }

    /// The most breakers kept at once (default 10 000, at least 1), apart from breakers
    /// with calls in flight. The map is split into shards of `max_keys / shards`
    /// entries each, and each shard keeps to its share.
    ///
    /// A breaker with a call in flight (a [`Permit`] out, or a response future neither
    /// finished nor dropped) is never evicted, nor is one holding the circuit open (open
    /// within its open duration, probing within it with a
    /// [`probe_interval`](crate::ConfigBuilder::probe_interval), or
    /// [ramping up](crate::ConfigBuilder::ramp_up)): the call's outcome must reach the
    /// breaker the key uses next, or a trip would be lost. When a new key arrives at a shard holding nothing but such breakers:
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
