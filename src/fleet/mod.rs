//! Fleet-wide breaker state: instances of one service share their breakers' open and
//! close decisions through a [`StateStore`] such as [`RedisStore`] (feature `redis`).
//!
//! When a service runs as many instances, each one otherwise discovers a sick
//! downstream on its own and keeps sending it traffic until its own trip rules fire,
//! then probes it on its own schedule. With a shared store, the first instance that
//! trips tells the others, they open too, and only one instance at a time probes.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_circuit_breaker::fleet::{Fleet, RedisStore};
//! use tower_circuit_breaker::{CircuitBreaker, Config};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = CircuitBreaker::new(Config::builder().name("payments").build()?);
//! let store = RedisStore::open("redis://127.0.0.1:6379/", "checkout")?;
//! // Keep the handle: dropping it stops the sync.
//! let _sync = Fleet::new(store)
//!     .poll_interval(Duration::from_millis(100))
//!     .sync(&breaker)?;
//! // Use `breaker.layer()` as usual: calls never wait for Redis.
//! # Ok(())
//! # }
//! ```
//!
//! [`RedisStore::open`] takes one server (`redis://`, or `rediss://` over TLS with the
//! `rustls` feature); [`RedisStore::open_cluster`] a Redis Cluster.
//!
//! # Design: local-first
//!
//! The per-call path is unchanged: admission and outcome recording touch only the
//! local breaker's atomics, never the store. One background task per synced breaker
//! ([`Fleet::sync`]) is the only thing that talks to the store. Every
//! [`poll_interval`](Fleet::poll_interval), and whenever the local breaker changes
//! state, it:
//!
//! 1. **publishes** a local transition: an open with how long it lasts and why
//!    (`"5 consecutive failures"`), or a close (enough probes succeeded, or an
//!    operator's `reset`). Half-open is never published; neither are operator
//!    overrides (`force_open`, `disable`, ...), which stay local.
//! 2. **learns** the fleet's state: a record it has not seen yet is applied through two
//!    small hooks of the state machine. An open moves a closed or half-open breaker to
//!    `Open` until the published deadline, with
//!    [`TransitionReason::Remote`](crate::TransitionReason::Remote); unlike `force_open`
//!    it ends on its own and does not grow the local backoff. A close ends an open or
//!    half-open period. Operator overrides win over both.
//! 3. **coordinates probing**: whenever the local breaker is open and the store is
//!    reachable, its *probe gate* is shut: an elapsed open period no longer moves to
//!    half-open by itself, calls keep being rejected. When the open period has elapsed
//!    and calls were rejected since the last poll (the instance has traffic to probe
//!    with), the task asks the store for the breaker's short *probe lease*
//!    ([`StateStore::acquire_probe_lease`], `SET NX PX` in Redis). The one instance that
//!    gets it opens its gate and probes with its normal half-open rules; if its probes
//!    succeed it publishes a close and the others close; if one fails it re-opens and
//!    publishes the new deadline. The others stay open until the close arrives or the
//!    lease expires (a holder that died or hung), when one of them takes it over. So
//!    the fleet sends the probes of one instance at a time, not one set per instance.
//!
//! # Consistency model
//!
//! The store holds one record per breaker: the last open or close any instance
//! published (last writer wins), the open's deadline, and the probe lease.
//!
//! - **Local decisions are immediate, fleet decisions are eventual.** An instance that
//!   trips rejects at once; the others learn it within one poll interval plus one store
//!   round trip (bounded by [`RedisStore::timeout`]), typically `poll_interval + a few
//!   ms`. Until then they may send the calls their own rules allow: at most
//!   `poll_interval` worth of traffic each.
//! - **Deadlines are relative.** An open is published as "open for the next *d*"; the
//!   store keeps the deadline as a key that expires (Redis `PX`), and a reader applies
//!   the remaining time it reads. No wall clocks are compared, so clock skew between
//!   hosts does not matter; the store's round trip can make a learned deadline late by
//!   up to one poll interval.
//! - **A close can be stale by one poll interval** the same way: the others keep
//!   rejecting that long after the probing instance closed.
//! - **Races resolve to the last write.** Two instances tripping at once both publish;
//!   the others open for the later write's deadline (an open instance only ever extends
//!   its open period, never shortens it). A close racing a fresh trip may close the
//!   fleet while the downstream is still sick; then the local trip rules fire again,
//!   after the few failures they need.
//! - **The store unreachable or slow:** every store call has a timeout. On the first
//!   failure the task logs once (`warn`), opens the local probe gate and the instance
//!   runs on its local state alone: it trips, probes and closes by its own rules, as
//!   without a fleet. No call ever waits for, or fails because of, the store. When the
//!   store answers again the task logs once (`info`) and resyncs: it publishes what
//!   changed locally meanwhile, applies any record it has not seen, and re-publishes a
//!   local open the store has lost (a restarted Redis without persistence).
//! - **Restarts:** a new instance reads the record on start. If the fleet is open it
//!   opens for the remaining time (or, if that has elapsed and a probe is pending,
//!   waits for the probe's result behind the gate like the others).
//! - **Clean-up:** every key has a TTL (see [`RedisStore::record_ttl`]); a fleet that
//!   stops leaves nothing behind for long.
//!
//! # Why not a distributed lock around each call
//!
//! Asking the store before every call (or counting every outcome in it) would put a
//! network round trip, and the store's availability, on every request: the breaker
//! would add milliseconds where it now adds nanoseconds, and a slow or dead Redis
//! would fail or stall exactly the calls a breaker exists to protect. Trip rules also
//! do not need fleet-wide precision: what matters is that once one instance has seen
//! enough evidence, the rest stop hammering the downstream soon after, and that
//! recovery is probed by few calls. Sharing only transitions (a handful of writes per
//! outage) and reading the shared state every poll interval gives that, with the store
//! off the request path. The one place where instances must agree, who probes, uses a
//! lease with a TTL rather than a lock: a holder that dies cannot wedge the fleet.

mod redis_store;
mod store;
mod sync;

pub use redis_store::RedisStore;
pub use store::{FleetState, Record, StateStore, StoreError, StoreFuture};
pub use sync::{Fleet, FleetError, FleetSync};
