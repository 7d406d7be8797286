//! [`Registry`]: named breakers shared across call sites.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::breaker::CircuitBreaker;
use crate::lock::unpoisoned;

use crate::config::Config;

use crate::health::HealthReport;

/// A set of named breakers, shared by every clone.
///
/// Call sites that talk to the same downstream ask for the breaker by name and get the
/// same one, so a trip seen by one stops all of them. Operators iterate the registry for
/// health reports and metrics. Lookups take a read lock; only inserting a new name or
/// removing one takes the write lock. Fetch the breaker once (e.g. when building the
/// service stack), not per call.
///
/// ```
/// use tower_circuit_breaker::{Config, Registry, State};
///
/// let registry = Registry::new();
/// let payments = registry.get_or_insert("payments", Config::builder().consecutive_failures(1).build()?);
/// // Elsewhere: the same breaker, whatever config is passed.
/// let same = registry.get_or_insert("payments", Config::default());
/// payments.try_acquire().unwrap().failure();
/// assert_eq!(same.state(), State::Open);
/// assert_eq!(same.name(), "payments");
///
/// let names: Vec<String> = registry.breakers().iter().map(|b| b.name().to_owned()).collect();
/// assert_eq!(names, ["payments"]);
/// assert!(registry.remove("payments").is_some());
/// assert!(registry.is_empty());
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    breakers: Arc<RwLock<BTreeMap<Arc<str>, CircuitBreaker>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The breaker named `name`; if there is none yet, a new one built from `config`
    /// and named `name` (the config's own name is replaced). An existing breaker keeps
    /// the configuration it was created with.
    pub fn get_or_insert(&self, name: &str, config: Config) -> CircuitBreaker {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        let mut breakers = self.write();
        if let Some(breaker) = breakers.get(name) {
            return breaker.clone();
        }
        let breaker = CircuitBreaker::new(config.renamed(name.to_owned()));
        breakers.insert(Arc::from(name), breaker.clone());
        breaker
    }

    /// The breaker named `name`; if there is none yet, `make()`'s, registered under
    /// `name`. `make` runs only when `name` is missing (and may then lose a race to
    /// another inserter, whose breaker is returned).
    #[cfg(feature = "serde")]
    pub(crate) fn get_or_insert_with(
        &self,
        name: &str,
        make: impl FnOnce() -> CircuitBreaker,
    ) -> CircuitBreaker {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        let made = make();
        self.write().entry(Arc::from(name)).or_insert(made).clone()
    }

    /// The breaker named `name`, if registered.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.read().get(name).cloned()
    }

    /// Registers `breaker` under its own [`name`](CircuitBreaker::name), returning the
    /// breaker it replaces. Services built on the replaced breaker keep using it.
    pub fn insert(&self, breaker: CircuitBreaker) -> Option<CircuitBreaker> {
        let name: Arc<str> = Arc::from(breaker.name());
        self.write().insert(name, breaker)
    }

    /// Unregisters the breaker named `name` and returns it. Services built on it keep
    /// working; the registry just no longer reports it or hands it out.
    pub fn remove(&self, name: &str) -> Option<CircuitBreaker> {
        self.write().remove(name)
    }

    /// Whether a breaker named `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The number of registered breakers.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no breaker is registered.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// A snapshot of every registered breaker, sorted by name. The lock is released
    /// before this returns, so callers may take their time with the result.
    pub fn breakers(&self) -> Vec<CircuitBreaker> {
        self.read().values().cloned().collect()
    }

    /// The health of every registered breaker, sorted by name, and the worst of them.
    pub fn health(&self) -> HealthReport {
        HealthReport::of(self.breakers().iter())
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Arc<str>, CircuitBreaker>> {
        // The map is valid after any panic (inserts and removes are single calls).
        unpoisoned(self.breakers.read())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Arc<str>, CircuitBreaker>> {
        unpoisoned(self.breakers.write())
    }
}

impl IntoIterator for &Registry {
    type Item = CircuitBreaker;
    type IntoIter = std::vec::IntoIter<CircuitBreaker>;

    /// Iterates over a snapshot of the registered breakers, sorted by name.
    fn into_iter(self) -> Self::IntoIter {
        self.breakers().into_iter()
    }
}
