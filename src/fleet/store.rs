//! [`StateStore`]: where a fleet's instances share their breakers' state.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::BoxError;

/// The future a [`StateStore`] method returns. Boxed so the trait is object-safe; the
/// store is only called from the background sync task, never per request.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A shared store of breaker state, keyed by breaker name. [`RedisStore`] is the
/// provided implementation; implement this trait to use another store.
///
/// Implementations must bound every call in time (the sync task treats an error as
/// "store unreachable" and falls back to local state) and should expire what they keep.
///
/// [`RedisStore`]: crate::fleet::RedisStore
pub trait StateStore: Send + Sync + 'static {
    /// Makes `record` the fleet's current state of breaker `name`. An open record's
    /// `open_for` counts from the moment the store receives it. A close also releases
    /// the probe lease.
    fn publish<'a>(&'a self, name: &'a str, record: &'a Record) -> StoreFuture<'a, ()>;

    /// The fleet's current state of breaker `name`, `None` if nothing (unexpired) is
    /// stored. An open record's `open_for` is the time *remaining* until its deadline
    /// (zero once passed).
    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Record>>;

    /// Takes the probe lease of breaker `name` for `holder` for `ttl`, unless another
    /// holder has it. Returns whether `holder` holds it now (also when it already did).
    fn acquire_probe_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;
}

/// One published state of a breaker, with who published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The state.
    pub state: FleetState,
    /// The instance that published it ([`Fleet::instance_id`](crate::fleet::Fleet::instance_id)).
    pub origin: String,
    /// Unique per publication of `origin`: readers apply a record once, when its
    /// `(origin, id)` changes.
    pub id: u64,
}

/// The state a fleet shares. Half-open is not shared: one instance probes while the
/// others stay open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetState {
    /// The breaker is open.
    Open {
        /// How long it stays open (when published) or remains open (when loaded).
        open_for: Duration,
        /// Why it opened, as the opening instance's
        /// [`TransitionReason`](crate::TransitionReason) displays it.
        reason: String,
    },
    /// The breaker closed.
    Closed,
}

/// Why a store call failed. The sync task logs it (once per outage) and carries on
/// with local state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error("the state store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store could not be reached or refused the command.
    #[error("the state store failed: {0}")]
    Unavailable(#[source] BoxError),
    /// The store holds a value this crate cannot read.
    #[error("unreadable record at `{key}`: {value:?}")]
    Malformed {
        /// The key holding the value.
        key: String,
        /// The value.
        value: String,
    },
}
