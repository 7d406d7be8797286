//! Configuration: validation of every setting, and configuration files (feature `serde`)
//! on their own or inside the application's configuration.
//!
//! `cargo test --features serde --test config`

mod embedded;
mod file;
mod validation;
