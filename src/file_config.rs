//! Configuration files (feature `serde`): one [`Config`], or a whole [`Registry`] with
//! defaults and per-name overrides, from TOML (or any `serde` format for `Config`).
//!
//! Every key is checked: an unknown key, a value of the wrong type and a value that
//! fails validation all yield a [`ConfigError::File`] naming the key's full path, e.g.
//! `breakers.payments.open_duration`.
//!
//! Durations are strings such as `"30s"`, `"1m30s"`, `"250ms"` or `"1.5h"` (units `ns`,
//! `us`, `ms`, `s`, `m`/`min`, `h`, `d`), or plain numbers of seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error as _};
use toml::{Table, Value};

use crate::{Backoff, Config, ConfigBuilder, ConfigError, Registry, Window};

/// A [`Registry`]'s configuration: defaults plus one override table per breaker name.
///
/// ```toml
/// # The seed's application table: read as the first layer of defaults.
/// [resilience]
/// circuit_breaker_enabled = true
/// circuit_breaker_threshold = 5        # consecutive failures before opening
/// circuit_breaker_timeout = 60         # seconds before probing
/// circuit_breaker_half_open_calls = 3  # concurrent probes
///
/// # Defaults for every breaker, over [resilience].
/// [defaults]
/// open_duration = "30s"
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
/// consecutive_failures = 3
/// backpressure = true
/// ```
///
/// A breaker table takes the keys of [`ConfigBuilder`]'s setters; `sliding_window` is
/// `{ calls = N }` or `{ time = "60s", buckets = N }`. The seed's per-circuit names
/// `failure_threshold`, `timeout_seconds` and `half_open_max_calls` are accepted as
/// aliases of `consecutive_failures`, `open_duration` and `half_open_permits`.
/// Layering is per key: a breaker that sets `failure_rate` still inherits a default
/// `consecutive_failures`, and opens on whichever rule fires first.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::RegistryConfig;
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
/// let registry = file.registry();
/// assert!(registry.contains("payments"));
///
/// let err = RegistryConfig::from_toml("[breakers.payments]\nopen_duration = \"30 parsecs\"").unwrap_err();
/// assert_eq!(err.field(), "breakers.payments.open_duration");
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    defaults: Config,
    breakers: BTreeMap<String, Config>,
    enabled: bool,
}

impl RegistryConfig {
    /// Parses and validates a registry file.
    pub fn from_toml(text: &str) -> Result<RegistryConfig, ConfigError> {
        let table = parse_table(text)?;
        let (mut base, enabled) = match table.get("resilience") {
            Some(resilience) => parse_resilience(expect_table(resilience, "resilience")?)?,
            None => (ConfigBuilder::default(), true),
        };
        if let Some(defaults) = table.get("defaults") {
            let defaults = expect_table(defaults, "defaults")?;
            base = parse_builder(defaults, "defaults")?.over(base);
        }
        let defaults_path = if table.contains_key("defaults") {
            "defaults"
        } else {
            "resilience"
        };
        let defaults = build_at(base.clone(), defaults_path)?;
        let mut breakers = BTreeMap::new();
        if let Some(named) = table.get("breakers") {
            for (name, value) in expect_table(named, "breakers")? {
                let path = format!("breakers.{name}");
                let own = parse_builder(expect_table(value, &path)?, &path)?;
                if own.name_set().is_some_and(|inner| inner != name) {
                    return Err(file_error(
                        &format!("{path}.name"),
                        "differs from the table's key, which names the breaker",
                    ));
                }
                let config = build_at(own.over(base.clone()).name(name), &path)?;
                breakers.insert(name.clone(), config);
            }
        }
        for key in table.keys() {
            if !matches!(key.as_str(), "resilience" | "defaults" | "breakers") {
                return Err(file_error(
                    key,
                    "unknown key (expected `defaults`, `breakers` or `resilience`)",
                ));
            }
        }
        Ok(RegistryConfig {
            defaults,
            breakers,
            enabled,
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
    pub fn config_for(&self, name: &str) -> Config {
        match self.breakers.get(name) {
            Some(config) => config.clone(),
            None => Config {
                name: Arc::from(name),
                ..self.defaults.clone()
            },
        }
    }

    /// Whether `[resilience] circuit_breaker_enabled` left breakers on (default true).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A registry holding every breaker the file lists; with
    /// `circuit_breaker_enabled = false` each is [`disable`](crate::CircuitBreaker::disable)d.
    pub fn registry(&self) -> Registry {
        let registry = Registry::new();
        for (name, config) in &self.breakers {
            let breaker = registry.get_or_insert(name, config.clone());
            if !self.enabled {
                breaker.disable();
            }
        }
        registry
    }
}

impl Registry {
    /// A registry of every breaker listed in a [`RegistryConfig`] TOML file.
    pub fn from_toml(text: &str) -> Result<Registry, ConfigError> {
        Ok(RegistryConfig::from_toml(text)?.registry())
    }
}

impl Config {
    /// One breaker's configuration from a TOML table of [`ConfigBuilder`] keys, e.g.
    /// `consecutive_failures = 3` and `open_duration = "30s"`; validated like
    /// [`ConfigBuilder::build`], with errors naming the key.
    ///
    /// ```
    /// use tower_circuit_breaker::Config;
    ///
    /// let config = Config::from_toml("name = \"db\"\nfailure_rate = 0.5\nsliding_window = { calls = 50 }")?;
    /// assert_eq!(config.failure_rate(), Some(0.5));
    /// let err = Config::from_toml("failure_rate = 1.5").unwrap_err();
    /// assert_eq!(err.field(), "failure_rate");
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table = parse_table(text)?;
        build_at(parse_builder(&table, "")?, "")
    }
}

/// Deserializes from any `serde` format (TOML, JSON, ...) with the keys of
/// [`Config::from_toml`], validated the same way.
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let table = expect_table(&value, "").map_err(D::Error::custom)?;
        parse_builder(table, "")
            .and_then(|builder| build_at(builder, ""))
            .map_err(D::Error::custom)
    }
}

/// A table's settings as a [`ConfigBuilder`], not yet validated: every key optional,
/// so that layers can merge with [`ConfigBuilder::over`].
fn parse_builder(table: &Table, path: &str) -> Result<ConfigBuilder, ConfigError> {
    let mut builder = ConfigBuilder::default();
    for (key, value) in table {
        let at = join(path, key);
        builder = match key.as_str() {
            "name" => builder.name(expect_str(value, &at)?),
            "consecutive_failures" | "failure_threshold" => {
                builder.consecutive_failures(expect_u32(value, &at)?)
            }
            "failure_rate" => builder.failure_rate(expect_f64(value, &at)?),
            "sliding_window" => builder.sliding_window(parse_window(value, &at)?),
            "minimum_calls" => builder.minimum_calls(expect_u32(value, &at)?),
            "slow_call" => {
                let slow = expect_table(value, &at)?;
                check_keys(slow, &at, &["threshold", "rate"])?;
                let threshold = required(slow, &at, "threshold", expect_duration)?;
                let rate = required(slow, &at, "rate", expect_f64)?;
                builder.slow_call(threshold, rate)
            }
            "open_duration" | "timeout_seconds" => {
                builder.open_duration(expect_duration(value, &at)?)
            }
            "open_backoff" => builder.open_backoff(parse_backoff(value, &at)?),
            "half_open_permits" | "half_open_max_calls" => {
                builder.half_open_permits(expect_u32(value, &at)?)
            }
            "half_open_successes" => builder.half_open_successes(expect_u32(value, &at)?),
            "half_open_max_wait" => builder.half_open_max_wait(expect_duration(value, &at)?),
            "backpressure" => builder.backpressure(expect_bool(value, &at)?),
            _ => return Err(file_error(&at, "unknown key")),
        };
    }
    Ok(builder)
}

/// Validates `builder`; a rejected field is reported at `path`.
fn build_at(builder: ConfigBuilder, path: &str) -> Result<Config, ConfigError> {
    builder.build().map_err(|error| match error {
        ConfigError::Invalid { field, .. } => file_error(&join(path, field), error),
        other => other,
    })
}

/// Reads the seed's `[resilience]` table: the settings it gives every breaker, and
/// `circuit_breaker_enabled`. Keys not starting with `circuit_breaker_` belong to other
/// components and are left alone.
fn parse_resilience(table: &Table) -> Result<(ConfigBuilder, bool), ConfigError> {
    let mut base = ConfigBuilder::default();
    let mut enabled = true;
    for (key, value) in table {
        let at = join("resilience", key);
        base = match key.as_str() {
            "circuit_breaker_enabled" => {
                enabled = expect_bool(value, &at)?;
                base
            }
            "circuit_breaker_threshold" => base.consecutive_failures(expect_u32(value, &at)?),
            "circuit_breaker_timeout" => base.open_duration(expect_duration(value, &at)?),
            "circuit_breaker_half_open_calls" => base.half_open_permits(expect_u32(value, &at)?),
            other if other.starts_with("circuit_breaker_") => {
                return Err(file_error(&at, "unknown circuit breaker key"))
            }
            _ => base,
        };
    }
    Ok((base, enabled))
}

fn parse_window(value: &Value, at: &str) -> Result<Window, ConfigError> {
    let table = expect_table(value, at)?;
    check_keys(table, at, &["calls", "time", "buckets"])?;
    match (table.get("calls"), table.get("time")) {
        (Some(calls), None) => {
            if table.contains_key("buckets") {
                return Err(file_error(
                    &join(at, "buckets"),
                    "only a time window has buckets",
                ));
            }
            Ok(Window::count(expect_u32(calls, &join(at, "calls"))?))
        }
        (None, Some(time)) => {
            let window = Window::time(expect_duration(time, &join(at, "time"))?);
            match table.get("buckets") {
                Some(buckets) => Ok(window.buckets(expect_u32(buckets, &join(at, "buckets"))?)),
                None => Ok(window),
            }
        }
        _ => Err(file_error(
            at,
            "expected `{ calls = N }` or `{ time = \"60s\", buckets = N }`",
        )),
    }
}

fn parse_backoff(value: &Value, at: &str) -> Result<Backoff, ConfigError> {
    let table = expect_table(value, at)?;
    check_keys(table, at, &["multiplier", "max", "jitter"])?;
    let multiplier = match table.get("multiplier") {
        Some(value) => expect_f64(value, &join(at, "multiplier"))?,
        None => 1.0,
    };
    let max = match table.get("max") {
        Some(value) => Some(expect_duration(value, &join(at, "max"))?),
        None => None,
    };
    let jitter = match table.get("jitter") {
        Some(value) => expect_f64(value, &join(at, "jitter"))?,
        None => 0.0,
    };
    Ok(Backoff {
        multiplier,
        max,
        jitter,
    })
}

fn check_keys(table: &Table, at: &str, known: &[&str]) -> Result<(), ConfigError> {
    match table.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(file_error(&join(at, key), "unknown key")),
        None => Ok(()),
    }
}

fn required<T>(
    table: &Table,
    at: &str,
    key: &str,
    parse: impl FnOnce(&Value, &str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let at = join(at, key);
    match table.get(key) {
        Some(value) => parse(value, &at),
        None => Err(file_error(&at, "missing")),
    }
}

fn expect_table<'a>(value: &'a Value, at: &str) -> Result<&'a Table, ConfigError> {
    value
        .as_table()
        .ok_or_else(|| type_error(at, "a table", value))
}

fn expect_str<'a>(value: &'a Value, at: &str) -> Result<&'a str, ConfigError> {
    value
        .as_str()
        .ok_or_else(|| type_error(at, "a string", value))
}

fn expect_bool(value: &Value, at: &str) -> Result<bool, ConfigError> {
    value
        .as_bool()
        .ok_or_else(|| type_error(at, "true or false", value))
}

fn expect_u32(value: &Value, at: &str) -> Result<u32, ConfigError> {
    let n = value
        .as_integer()
        .ok_or_else(|| type_error(at, "an integer", value))?;
    u32::try_from(n).map_err(|_| file_error(at, format!("{n} is not in 0..=4294967295")))
}

fn expect_f64(value: &Value, at: &str) -> Result<f64, ConfigError> {
    match value {
        Value::Float(x) => Ok(*x),
        Value::Integer(n) => Ok(*n as f64),
        other => Err(type_error(at, "a number", other)),
    }
}

/// A duration: a string such as `"1m30s"`, or a number of seconds.
fn expect_duration(value: &Value, at: &str) -> Result<Duration, ConfigError> {
    let seconds = match value {
        Value::String(text) => {
            return parse_duration(text)
                .map_err(|rule| file_error(at, format!("{text:?} is not a duration: {rule}")))
        }
        Value::Integer(n) => *n as f64,
        Value::Float(x) => *x,
        other => {
            return Err(type_error(
                at,
                "a duration such as \"30s\" or a number of seconds",
                other,
            ))
        }
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| file_error(at, format!("{seconds} is not a number of seconds >= 0")))
}

/// Parses `"30s"`, `"1m30s"`, `"1.5h"`, `"250 ms"`: numbers, each followed by a unit.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty");
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err("expected a number");
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| "malformed number")?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" | "nsec" => 1e-9,
            "us" | "µs" | "usec" => 1e-6,
            "ms" | "msec" => 1e-3,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "" => return Err("missing unit (ns, us, ms, s, m, h, d)"),
            _ => return Err("unknown unit (expected ns, us, ms, s, m, h or d)"),
        };
        total += number * unit;
        rest = rest[unit_len..].trim_start();
    }
    Duration::try_from_secs_f64(total).map_err(|_| "too long")
}

/// Parses TOML text; a syntax error names its line.
fn parse_table(text: &str) -> Result<Table, ConfigError> {
    text.parse().map_err(|error: toml::de::Error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => file_error(
                "",
                format!("TOML syntax error on line {line}: {}", error.message()),
            ),
            None => file_error("", format!("TOML syntax error: {}", error.message())),
        }
    })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_error(at: &str, expected: &str, found: &Value) -> ConfigError {
    file_error(
        at,
        format!("expected {expected}, found {}", found.type_str()),
    )
}

fn file_error(path: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_humantime_style() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration(" 5 min "), Ok(Duration::from_secs(300)));
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("30").is_err(),
            "a unit is required in a string"
        );
        assert!(parse_duration("30 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1e400s").is_err());
    }
}
