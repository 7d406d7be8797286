//! The retry policy and the documented resilience stack (retry, breaker, timeout,
//! bulkhead), and the retry policy's allocation counts.
//!
//! `cargo test --test retry`

#[path = "../support/mod.rs"]
mod support;

// The allocation tests count the allocations of their own thread only, so the other
// tests of this binary, running on other threads, do not disturb them.
#[path = "../support/counting_allocator.rs"]
mod counting_allocator;

mod allocations;
mod policy;
mod stack;
