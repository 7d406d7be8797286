//! [`RegistryConfig`]: a [`Registry`]'s file, with defaults and per-name overrides.

use std::collections::BTreeMap;

use toml::Table;

use crate::breaker::CircuitBreaker;
use crate::config::Config;
use crate::error::ConfigError;
use crate::registry::Registry;

use super::build::{build, check_used};
use super::keys::{Field, Level, TOP_LEVEL};
use super::layer::Layer;
use super::values::{expect_table, file_error, join, parse_table};

/// A [`Registry`]'s configuration: defaults plus one override table per breaker name.
///
/// ```toml
/// # An application-wide `[resilience]` table: the first layer of defaults. Only its keys that
/// # start with `circuit_breaker` are the breaker's; the others belong to other
/// # components and are left alone.
/// [resilience]
/// circuit_breaker_enabled = true
/// circuit_breaker_threshold = 5        # consecutive failures before opening
/// circuit_breaker_timeout = 60         # seconds before probing
/// circuit_breaker_half_open_calls = 3  # concurrent probes
/// retry_max_attempts = 3               # another component's
///
/// # Defaults for every breaker, over [resilience].
/// [defaults]
/// half_open_max_wait = "1m"
///
/// # One table per breaker: its keys override the defaults.
/// [breakers.payments]
/// failure_rate = 0.5
/// sliding_window = { time = "60s", buckets = 20 }
/// minimum_calls = 20
/// slow_call = { threshold = "2s", rate = 0.8 }
/// open_backoff = { multiplier = 2.0, max = "5m", jitter = 0.1 }
///
/// [breakers.inventory]
/// circuit_breaker_threshold = 3        # `circuit_breaker_*` keys work in every table
/// backpressure = true
/// ```
///
/// Layering is per key: a breaker that sets `failure_rate` still inherits a default
/// `consecutive_failures`, and opens on whichever rule fires first. A table value
/// (`sliding_window`, `slow_call`, `open_backoff`, `failure_rate_adaptive`) replaces the
/// inherited one whole, and `failure_rate` and `failure_rate_adaptive` are one setting:
/// a table's own failure-rate rule, fixed or adaptive, replaces the inherited one.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{RegistryConfig, State};
///
/// let file = RegistryConfig::from_toml(r#"
///     [defaults]
///     open_duration = "30s"
///     [breakers.payments]
///     consecutive_failures = 3
/// "#)?;
/// let payments = file.config_for("payments");
/// assert_eq!(payments.consecutive_failures(), Some(3));
/// assert_eq!(payments.open_duration(), Duration::from_secs(30)); // from the defaults
/// assert_eq!(file.config_for("unlisted").open_duration(), Duration::from_secs(30));
///
/// // The registry holds every listed breaker, built and ready.
/// let registry = file.registry();
/// let payments = registry.get("payments").expect("listed in the file");
/// assert_eq!(payments.state(), State::Closed);
///
/// let err = RegistryConfig::from_toml("[breakers.payments]\ncircuit_breaker_timeout = \"30 parsecs\"").unwrap_err();
/// assert_eq!(err.field(), "breakers.payments.circuit_breaker_timeout");
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
///
/// # Three ways to read it
///
/// - [`RegistryConfig::from_toml`] / [`Registry::from_toml`]: a file of breakers only;
///   any other top-level key is an error.
/// - [`RegistryConfig::from_app_toml`]: the application's whole TOML file; its tables
///   other than `resilience`, `defaults` and `breakers` are the application's and are
///   left alone.
/// - `Deserialize` (any `serde` format): as a field of the application's own
///   configuration struct, under any key, or `#[serde(flatten)]`ed into it to read
///   `[resilience]`, `[defaults]` and `[breakers]` from its top level (the other keys go
///   to the application's other fields). Unflattened, it accepts only those three keys.
///
/// ```
/// use serde::Deserialize;
/// use tower_circuit_breaker::RegistryConfig;
///
/// #[derive(Deserialize)]
/// struct App {
///     server: Server,
///     circuit_breakers: RegistryConfig, // under a key of the application's choosing
/// }
/// #[derive(Deserialize)]
/// struct Server {
///     port: u16,
/// }
///
/// let app: App = toml::from_str(r#"
///     [server]
///     port = 8080
///     [circuit_breakers.defaults]
///     circuit_breaker_threshold = 3
///     [circuit_breakers.breakers.payments]
///     failure_rate = 0.5
/// "#)?;
/// assert_eq!(app.server.port, 8080);
/// let payments = app.circuit_breakers.config_for("payments");
/// assert_eq!((payments.consecutive_failures(), payments.failure_rate()), (Some(3), Some(0.5)));
///
/// #[derive(Deserialize)]
/// struct FlatApp {
///     server: Server,
///     #[serde(flatten)] // reads [resilience], [defaults] and [breakers] at the top
///     breakers: RegistryConfig,
/// }
/// let app: FlatApp = toml::from_str(r#"
///     [server]
///     port = 8080
///     [resilience]
///     circuit_breaker_threshold = 4
///     [breakers.payments]
/// "#)?;
/// assert_eq!(app.breakers.registry().len(), 1);
/// # Ok::<(), toml::de::Error>(())
/// ```
///
/// # Keys
///
/// `[defaults]`, `[breakers.NAME]` and a lone [`Config`] take the keys of
/// [`ConfigBuilder`](crate::ConfigBuilder)'s setters, the `circuit_breaker_*` aliases, and either
/// spelled with a `circuit_breaker_` prefix (`circuit_breaker_failure_rate`). In
/// `[resilience]`, which the application shares with other components, only the
/// prefixed spellings are the breaker's. Durations are strings such as `"30s"`,
/// `"1m30s"`, `"250ms"` or `"1.5h"` (units `ns`, `us`, `ms`, `s`, `m`/`min`, `h`, `d`), or
/// numbers of seconds.
///
/// Every key either takes effect or is rejected; none sits there doing nothing:
///
/// | key (aliases) | effect | why it cannot be inert |
/// | --- | --- | --- |
/// | `name` | names a lone `Config` | in `[breakers.NAME]` it must equal `NAME`; rejected in `[defaults]`/`[resilience]`, where it would name no breaker |
/// | `consecutive_failures` (`failure_threshold`, `circuit_breaker_threshold`) | opens after N failures in a row | always evaluated; `0` rejected |
/// | `failure_rate` | opens at that failure share of the window | always evaluated; with `failure_rate_adaptive` in the same table rejected |
/// | `failure_rate_adaptive` = `{ margin, tolerance, floor, cap, horizon, warm_up, streak_probability }` | opens at a threshold learned from the backend's normal failure rate ([`AdaptiveFailureRate`](crate::AdaptiveFailureRate)); each key optional, `{}` for the defaults | always evaluated; needs a count window |
/// | `sliding_window` = `{ calls }` / `{ time, buckets }` | the window of the rate rules and of [`Metrics`](crate::Metrics)' rates | without a rate rule it still sets the window the metrics' rates cover; `buckets` on a count window rejected |
/// | `minimum_calls` | calls the window needs before a rate rule may trip | rejected where no breaker that takes it has a rate rule (`failure_rate`, `failure_rate_adaptive` or `slow_call`) |
/// | `slow_call` = `{ threshold, rate }` | opens at that share of slow calls | both keys required |
/// | `open_duration` (`timeout_seconds`, `circuit_breaker_timeout`) | the (base) open period | always used |
/// | `open_backoff` = `{ multiplier, linear, max, jitter, reset_after }` | grows the open period over consecutive trips, by `multiplier` or (`linear = true`) by `open_duration` per trip; `reset_after` keeps counting trips across a close until the breaker stayed closed that long | a growing backoff without `max`, `max` without one, `linear` with `multiplier`, and `max` equal to `open_duration` are rejected; `jitter` always applies; `reset_after` without a growing backoff is rejected |
/// | `half_open_permits` (`half_open_max_calls`, `circuit_breaker_half_open_calls`) | concurrent probes | always used |
/// | `half_open_successes` | successful probes that close | always used |
/// | `half_open_max_wait` | how long half-open waits for a probe | always used |
/// | `ramp_up` | after a recovery, admits a growing share of calls over this time | always used on a recovery; `0` rejected |
/// | `probe_interval` | the longest an open breaker goes without a probe | rejected unless shorter than the longest open period (`open_duration`, or `open_backoff.max`) |
/// | `backpressure` | `poll_ready` waits while open | used by the Tower service ([`CircuitBreakerService`](crate::CircuitBreakerService)); `try_acquire` and `call` never poll readiness |
/// | `enabled` (`circuit_breaker_enabled`) | `false` disables the breaker ([`registry`](Self::registry), [`breaker_in`](Self::breaker_in)) | rejected in a lone `Config`, which has no such switch |
/// | one setting under two spellings in one table | | rejected: one would always lose |
/// | a `[resilience]` setting also in `[defaults]` | | rejected: `[defaults]` would win for every breaker |
/// | a breaker key in `[resilience]` without the prefix (`open_duration`, ...) | | rejected, naming the prefixed spelling; generic names (`name`, `enabled`, `backpressure`, `failure_threshold`, `timeout_seconds`) are left to other components |
/// | other keys | | unknown keys are rejected in every breaker table and sub-table, and in `[resilience]` when they start with `circuit_breaker`; other `[resilience]` keys, and other top-level keys read by `from_app_toml` or `flatten`, are the application's |
///
/// # Errors
///
/// An unknown key, a value of the wrong type, a value that fails validation and a
/// setting that would do nothing all yield a [`ConfigError::File`] whose `path` is the
/// key as the file wrote it, alias and table included: `[resilience]
/// circuit_breaker_threshold = 0` is reported at `resilience.circuit_breaker_threshold`,
/// and a value a breaker inherits at the table that wrote it. Through `Deserialize`
/// the path is relative to where the `RegistryConfig` sits, and the format's own error
/// adds its position (line and column for TOML and JSON).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    defaults: Config,
    enabled: bool,
    breakers: BTreeMap<String, Listed>,
}

/// A breaker the file lists.
#[derive(Debug, Clone)]
struct Listed {
    config: Config,
    enabled: bool,
}

impl RegistryConfig {
    /// Parses and validates a registry file: `[resilience]`, `[defaults]` and
    /// `[breakers.NAME]` tables only, any other top-level key being an error.
    pub fn from_toml(text: &str) -> Result<RegistryConfig, ConfigError> {
        RegistryConfig::from_table(&parse_table(text)?, true)
    }

    /// Parses and validates the breakers' part of an application's whole TOML file:
    /// `[resilience]`, `[defaults]` and `[breakers.NAME]`, leaving every other top-level
    /// table (`[server]`, `[database]`, ...) to the application. Inside the breakers'
    /// tables, unknown keys are still errors.
    ///
    /// This reads the same as `#[serde(flatten)]`ing a `RegistryConfig` into the
    /// application's configuration struct. An application that uses `[defaults]` or
    /// `[breakers]` for something else puts the breakers under a key of its own
    /// instead (see [`RegistryConfig`]'s `Deserialize`).
    ///
    /// ```
    /// use tower_circuit_breaker::RegistryConfig;
    ///
    /// let file = RegistryConfig::from_app_toml(r#"
    ///     [server]
    ///     port = 8080
    ///     [resilience]
    ///     circuit_breaker_threshold = 5
    ///     retry_max_attempts = 3   # another component's
    ///     [breakers.payments]
    ///     circuit_breaker_timeout = "10s"
    /// "#)?;
    /// assert_eq!(file.names().collect::<Vec<_>>(), ["payments"]);
    ///
    /// let err = RegistryConfig::from_app_toml("[breakers.payments]\ntimout = \"10s\"").unwrap_err();
    /// assert_eq!(err.field(), "breakers.payments.timout");
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn from_app_toml(text: &str) -> Result<RegistryConfig, ConfigError> {
        RegistryConfig::from_table(&parse_table(text)?, false)
    }

    /// Reads a parsed registry table; with `strict`, keys other than [`TOP_LEVEL`]'s
    /// are errors, without, they are the application's.
    pub(super) fn from_table(table: &Table, strict: bool) -> Result<RegistryConfig, ConfigError> {
        if strict {
            if let Some(key) = table.keys().find(|key| !TOP_LEVEL.contains(&key.as_str())) {
                return Err(file_error(
                    &join("", key),
                    "unknown key (expected `defaults`, `breakers` or `resilience`; \
                     `RegistryConfig::from_app_toml` reads an application's whole file)",
                ));
            }
        }
        let read = |key: &str, level: Level| match table.get(key) {
            Some(value) => Layer::parse(expect_table(value, key)?, key, level),
            None => Ok(Layer::empty(key, level)),
        };
        let resilience = read("resilience", Level::Resilience)?;
        let defaults = read("defaults", Level::Defaults)?;
        for (&field, key) in &resilience.written {
            if let Some(winner) = defaults.key_path(field) {
                return Err(file_error(
                    &join(&resilience.path, key),
                    format!(
                        "has no effect: `{winner}` overrides it for every breaker; set it in \
                         one place"
                    ),
                ));
            }
        }
        let default_config = build(&[&defaults, &resilience], None)?;
        let enabled = defaults.enabled.or(resilience.enabled).unwrap_or(true);

        let mut listed = Vec::new();
        if let Some(named) = table.get("breakers") {
            for (name, value) in expect_table(named, "breakers")? {
                let path = join("breakers", name);
                let own = Layer::parse(expect_table(value, &path)?, &path, Level::Breaker)?;
                if own.builder.name_set().is_some_and(|inner| inner != name) {
                    return Err(file_error(
                        &own.key_path(Field::Name).unwrap_or_default(),
                        "differs from the table's key, which names the breaker",
                    ));
                }
                let config = build(&[&own, &defaults, &resilience], Some(name))?;
                listed.push((name.clone(), own, config));
            }
        }

        // Every setting must reach a breaker it changes something for.
        for (name, own, config) in &listed {
            check_used(own, |_| vec![config], &format!("breaker `{name}` has none"))?;
        }
        for layer in [&defaults, &resilience] {
            let takers = |field: Field| {
                let inheriting = listed
                    .iter()
                    .filter(move |(_, own, _)| !own.written.contains_key(&field))
                    .map(|(_, _, config)| config);
                std::iter::once(&default_config).chain(inheriting).collect()
            };
            check_used(
                layer,
                takers,
                "neither the defaults nor any breaker inheriting it has one",
            )?;
        }

        let breakers = listed
            .into_iter()
            .map(|(name, own, config)| {
                let enabled = own.enabled.unwrap_or(enabled);
                (name, Listed { config, enabled })
            })
            .collect();
        Ok(RegistryConfig {
            defaults: default_config,
            enabled,
            breakers,
        })
    }

    /// The defaults every breaker starts from.
    pub fn defaults(&self) -> &Config {
        &self.defaults
    }

    /// The names of the breakers the file lists, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.breakers.keys().map(String::as_str)
    }

    /// The configuration of breaker `name`: its own table over the defaults, or the
    /// defaults alone (named `name`) when the file does not list it.
    ///
    /// A [`Config`] has no on/off switch: to honour `enabled = false`, get the breaker
    /// from [`registry`](Self::registry) or [`breaker_in`](Self::breaker_in).
    pub fn config_for(&self, name: &str) -> Config {
        match self.breakers.get(name) {
            Some(listed) => listed.config.clone(),
            None => self.defaults.clone().renamed(name.to_owned()),
        }
    }

    /// Whether breakers are on unless their own table says otherwise:
    /// `circuit_breaker_enabled` in `[resilience]`, or `enabled` in `[defaults]`
    /// (default true).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether breaker `name` is on: its own `enabled`, or [`enabled`](Self::enabled).
    fn enabled_for(&self, name: &str) -> bool {
        self.breakers
            .get(name)
            .map_or(self.enabled, |listed| listed.enabled)
    }

    /// A breaker configured as the file says for `name`, disabled if it is off.
    fn new_breaker(&self, name: &str) -> CircuitBreaker {
        let breaker = CircuitBreaker::new(self.config_for(name));
        if !self.enabled_for(name) {
            breaker.disable();
        }
        breaker
    }

    /// A new registry holding every breaker the file lists, each built from its
    /// configuration and [`disable`](CircuitBreaker::disable)d when the file turns it
    /// off. Fetch them by name with [`Registry::get`]; each call of `registry` builds
    /// new breakers.
    ///
    /// ```
    /// use tower_circuit_breaker::{RegistryConfig, State};
    ///
    /// let file = RegistryConfig::from_toml(r#"
    ///     [breakers.payments]
    ///     failure_threshold = 3
    ///     [breakers.legacy]
    ///     enabled = false
    /// "#)?;
    /// let registry = file.registry();
    /// assert_eq!(registry.len(), 2);
    /// let payments = registry.get("payments").expect("listed");
    /// assert_eq!(payments.config().consecutive_failures(), Some(3));
    /// assert_eq!(registry.get("legacy").unwrap().state(), State::Disabled);
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn registry(&self) -> Registry {
        let registry = Registry::new();
        for name in self.breakers.keys() {
            registry.insert(self.new_breaker(name));
        }
        registry
    }

    /// The breaker `name` of `registry`; if there is none yet, one configured as this
    /// file says (its own table, or the defaults for a name the file does not list),
    /// disabled when the file turns it off, is registered and returned. The config is
    /// never repeated at the call site, and `enabled = false` holds for unlisted names
    /// too (which `registry.get_or_insert(name, file.config_for(name))` would miss).
    ///
    /// ```
    /// use tower_circuit_breaker::{RegistryConfig, State};
    ///
    /// let file = RegistryConfig::from_toml(r#"
    ///     [resilience]
    ///     circuit_breaker_enabled = false
    ///     [breakers.payments]
    ///     enabled = true
    ///     failure_rate = 0.5
    /// "#)?;
    /// let registry = file.registry();
    /// let payments = file.breaker_in(&registry, "payments"); // the pre-built one
    /// assert_eq!(payments.config().failure_rate(), Some(0.5));
    /// assert_eq!(payments.state(), State::Closed);
    ///
    /// let search = file.breaker_in(&registry, "search"); // unlisted: the defaults
    /// assert_eq!(search.state(), State::Disabled);
    /// assert!(registry.contains("search"));
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn breaker_in(&self, registry: &Registry, name: &str) -> CircuitBreaker {
        registry.get_or_insert_with(name, || self.new_breaker(name))
    }
}

impl Registry {
    /// A registry of every breaker listed in a [`RegistryConfig`] TOML file (see
    /// [`RegistryConfig::from_toml`]); fetch them with [`Registry::get`].
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn from_toml(text: &str) -> Result<Registry, ConfigError> {
        Ok(RegistryConfig::from_toml(text)?.registry())
    }
}
