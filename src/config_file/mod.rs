//! Configuration files (feature `serde`): one [`Config`], or a whole [`Registry`] with
//! defaults and per-name overrides, from TOML, or from any `serde` format through
//! the `Deserialize` impls of [`Config`] and [`RegistryConfig`].
//!
//! One job per file:
//!
//! - `registry`: [`RegistryConfig`], a registry's file;
//! - `single`: a lone [`Config`]'s file ([`Config::from_toml`]);
//! - `keys`: the keys, their aliases (one table), and which table may hold which;
//! - `values`: reading one value (durations, windows, backoff), key paths, errors;
//! - `layer`: one table's settings, remembering the key each was written with;
//! - `build`: layering tables into [`Config`]s, reporting a rejected value at the key
//!   that wrote it, and rejecting settings that would do nothing;
//! - `de`: the `Deserialize` impls.
//!
//! The keys and what each does (the audit that every key either takes effect or is
//! rejected) are documented on [`RegistryConfig`].
//!
//! [`Config`]: crate::config::Config
//! [`Config::from_toml`]: crate::config::Config::from_toml
//! [`Registry`]: crate::registry::Registry

mod build;
mod de;
mod keys;
mod layer;
mod registry;
mod single;
mod values;

pub use self::registry::RegistryConfig;
