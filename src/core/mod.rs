//! The breaker itself, independent of Tower.
//!
//! - [`word`]: the packed atomic state word (state, probes in flight, probe successes,
//!   generation) that every admission decision reads with one load.
//! - [`window`]: lock-free count and time sliding windows.
//! - [`machine`]: the state machine: admission, outcome recording, transitions.
//! - [`sync`]: std's atomics and mutex, or loom's under `--cfg loom`.
//! - [`events`]: the event fan-out to subscribers, one relaxed load when nobody
//!   listens.
//! - [`lane`]: striped per-thread counters, so the closed success path writes no shared
//!   cache line, and [`Permit`], the ticket a call carries from admission to outcome.

pub(crate) mod events;
pub(crate) mod lane;
pub(crate) mod machine;
pub(crate) mod sync;
pub(crate) mod window;
pub(crate) mod word;

pub use lane::Permit;
pub use machine::Reason as TransitionReason;
