//! The synchronisation primitives the state machine is built on.
//!
//! Normally std's. Built with `RUSTFLAGS="--cfg tcb_loom"`, they are [loom]'s model-checked
//! versions instead (the cfg has the crate's own name because `--cfg loom` would also
//! switch Tokio's internals to loom and drop `tokio::net`, which the dev-dependencies
//! need), so that `tests/loom/main.rs` can explore every interleaving of the
//! concurrent paths (admission, outcome recording, transitions). Only what carries the
//! breaker's state goes through here; thread-slot bookkeeping stays on std.
//!
//! [loom]: https://docs.rs/loom

#[cfg(tcb_loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
#[cfg(tcb_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(tcb_loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
#[cfg(not(tcb_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
