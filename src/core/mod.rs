//! The breaker itself, independent of Tower. Reached from the rest of the crate through
//! one door, `CircuitBreaker` (`src/breaker/`): the Tower glue and the fleet sync hold
//! core's values (tickets, rejections, permits) but never its state machine.
//!
//! # Glossary
//!
//! - **Word** ([`word::Word`]): the breaker's state packed into one `u64` (state,
//!   probes in flight, probe successes, generation). Admission reads it with one load;
//!   every change to it is one CAS.
//! - **Ticket** ([`admission::Ticket`]): an admitted call's identity, the word's period
//!   bits (state and generation) at admission; one `u64`. A call whose ticket is no
//!   longer current judged a period that has ended and moves nothing.
//! - **Permit** ([`permit::Permit`], public): what a call carries from admission to its
//!   outcome: its lane, its ticket, when it started, and whether its outcome was
//!   recorded. Dropped unreported, it records the outcome itself.
//! - **Lane** ([`lane::Lane`]): one stripe of a breaker's call counters, created by
//!   the first thread whose slot maps to it, so that calls on different threads write
//!   different cache lines (threads share lanes only when there are more of them than
//!   lanes).
//!
//! # Modules
//!
//! Imports run one way, down this list: a module uses only those below it, and the
//! crate's leaf modules (`state`, `reason`, `classify`, `clock`, `config`, `event`, `error`,
//! `random`, `lock`); nothing above `core` (the door, the middleware, the fleet, the export).
//!
//! - [`permit`]: the permit and its constructors.
//! - [`lane`]: striped per-thread counters; counts rejections.
//! - [`machine`]: the state machine: admission, outcome recording and trip rules,
//!   transitions, announcing, the fleet's hooks.
//! - [`observer`]: the hook through which transitions reach the metrics export.
//! - [`event_hub`]: the event fan-out to subscribers, one relaxed load when nobody
//!   listens.
//! - [`window`]: lock-free count and time sliding windows.
//! - [`baseline`]: the adaptive failure-rate rule's learned normal failure rate.
//! - [`ejection`]: the ejection cap shared by a group of endpoint breakers.
//! - [`admission`]: what admission hands out: tickets, rejections, permit kinds.
//! - [`word`]: the packed state word.
//! - [`sync`]: std's atomics and mutex, or loom's under `--cfg tcb_loom`.

pub(crate) mod admission;
pub(crate) mod baseline;
pub(crate) mod ejection;
pub(crate) mod event_hub;
pub(crate) mod lane;
pub(crate) mod machine;
pub(crate) mod observer;
pub(crate) mod permit;
pub(crate) mod sync;
pub(crate) mod window;
pub(crate) mod word;
