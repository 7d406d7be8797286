//! Fleet-wide breaker state (feature `redis`): the sync's logic in paused Tokio time
//! against an in-memory store, and the same against a real `redis-server`: faults
//! injected (killed, partitioned through a proxy, paused, answering errors), a real
//! three-node cluster, and TLS with an ACL user (feature `rustls`). The latter are
//! `#[ignore = "needs redis-server"]`; run them with
//!
//! ```text
//! cargo test --all-features --test fleet -- --include-ignored
//! ```
#![cfg(feature = "redis")]

#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod instance;
mod memory_store;
mod proxy;
mod redis_server;
mod tls;
mod with_memory_store;
mod with_redis;
