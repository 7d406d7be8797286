//! One table of settings (`[resilience]`, `[defaults]`, `[breakers.NAME]` or a lone
//! `Config`), remembering the key each setting was written with.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::config::ConfigBuilder;
use crate::error::ConfigError;

use super::keys::{resolve, Field, Level};
use super::values::{
    expect_bool, expect_duration, expect_f64, expect_str, expect_u32, file_error, join,
    parse_adaptive, parse_backoff, parse_slow_call, parse_window,
};

/// A table's settings, not yet validated (every one optional, so that layers merge
/// with [`ConfigBuilder::over`]), and the keys that wrote them.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    /// The table's path as written, e.g. `breakers.payments`; empty for a lone `Config`.
    pub(super) path: String,
    pub(super) level: Level,
    pub(super) builder: ConfigBuilder,
    /// For each setting the table holds, its key as written (`circuit_breaker_timeout`).
    pub(super) written: BTreeMap<Field, String>,
    /// `enabled`, which a [`Config`](crate::Config) does not hold.
    pub(super) enabled: Option<bool>,
}

impl Layer {
    /// A table that sets nothing.
    pub(super) fn empty(path: &str, level: Level) -> Layer {
        Layer {
            path: path.to_owned(),
            level,
            builder: ConfigBuilder::default(),
            written: BTreeMap::new(),
            enabled: None,
        }
    }

    /// Reads `table`, found at `path`. Every key must be known at `level` (in
    /// `[resilience]`, every key starting with `circuit_breaker`), and no setting may be
    /// written twice under two spellings.
    pub(super) fn parse(table: &Table, path: &str, level: Level) -> Result<Layer, ConfigError> {
        let mut layer = Layer::empty(path, level);
        for (key, value) in table {
            let at = join(path, key);
            let Some(field) = resolve(level, key, &at)? else {
                continue;
            };
            if let Some(first) = layer.written.get(&field) {
                return Err(file_error(
                    &at,
                    format!(
                        "sets the same setting as `{}`, so one of them would do nothing; keep one",
                        join(path, first)
                    ),
                ));
            }
            layer.set(field, value, &at)?;
            layer.written.insert(field, key.clone());
        }
        Ok(layer)
    }

    fn set(&mut self, field: Field, value: &Value, at: &str) -> Result<(), ConfigError> {
        let builder = std::mem::take(&mut self.builder);
        self.builder = match field {
            Field::Name => builder.name(expect_str(value, at)?.to_owned()),
            Field::ConsecutiveFailures => builder.consecutive_failures(expect_u32(value, at)?),
            Field::FailureRate => builder.failure_rate(expect_f64(value, at)?),
            Field::FailureRateAdaptive => builder.failure_rate_adaptive(parse_adaptive(value, at)?),
            Field::SlidingWindow => builder.sliding_window(parse_window(value, at)?),
            Field::MinimumCalls => builder.minimum_calls(expect_u32(value, at)?),
            Field::SlowCall => {
                let (threshold, rate) = parse_slow_call(value, at)?;
                builder.slow_call(threshold, rate)
            }
            Field::OpenDuration => builder.open_duration(expect_duration(value, at)?),
            Field::OpenBackoff => builder.open_backoff(parse_backoff(value, at)?),
            Field::HalfOpenPermits => builder.half_open_permits(expect_u32(value, at)?),
            Field::HalfOpenSuccesses => builder.half_open_successes(expect_u32(value, at)?),
            Field::HalfOpenMaxWait => builder.half_open_max_wait(expect_duration(value, at)?),
            Field::ProbeInterval => builder.probe_interval(expect_duration(value, at)?),
            Field::RampUp => builder.ramp_up(expect_duration(value, at)?),
            Field::Backpressure => builder.backpressure(expect_bool(value, at)?),
            Field::Enabled => {
                self.enabled = Some(expect_bool(value, at)?);
                builder
            }
        };
        Ok(())
    }

    /// The full path of the key that wrote `field` here, if this table sets it.
    pub(super) fn key_path(&self, field: Field) -> Option<String> {
        self.written.get(&field).map(|key| join(&self.path, key))
    }
}
