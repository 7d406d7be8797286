//! The breaker's rules and its Tower contract: every transition, readiness and
//! backpressure, cancellation and panics, outcome classification, extreme
//! configurations, the direct call, fallbacks, errors, keyed breakers, per-endpoint
//! breakers behind a balancer, the adaptive
//! failure-rate rule, the reference
//! model (property test) and the allocation counts of the hot paths.
//!
//! `cargo test --test rules`; one module per file, e.g. `cargo test --test rules keyed::`.

#[path = "../support/mod.rs"]
mod support;

// The allocation tests count the allocations of their own thread only, so the other
// tests of this binary, running on other threads, do not disturb them.
#[path = "../support/counting_allocator.rs"]
mod counting_allocator;

mod adaptive;
mod allocations;
mod balance;
mod cancellation;
mod classification;
mod direct_call;
mod errors;
mod extremes;
mod fallback;
mod keyed;
mod model;
mod readiness;
mod seed_scenarios;
mod transitions;
