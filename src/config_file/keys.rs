//! The keys a breaker table takes, their aliases, and which table may hold which.

use crate::config::Config;
use crate::error::ConfigError;

use super::values::file_error;

use self::Spelling::{Generic, Own};

/// The top-level keys of a registry file.
pub(super) const TOP_LEVEL: [&str; 3] = ["resilience", "defaults", "breakers"];

/// The prefix of the breaker's keys in `[resilience]`, a table other components share.
pub(super) const PREFIX: &str = "circuit_breaker_";

/// One breaker setting, whichever key spelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    Name,
    ConsecutiveFailures,
    FailureRate,
    FailureRateAdaptive,
    SlidingWindow,
    MinimumCalls,
    SlowCall,
    OpenDuration,
    OpenBackoff,
    HalfOpenPermits,
    HalfOpenSuccesses,
    HalfOpenMaxWait,
    ProbeInterval,
    RampUp,
    Backpressure,
    Enabled,
}

/// A spelling of a setting's key, and whose it is when written in `[resilience]`
/// without [`PREFIX`] (spellings that start with it are always the breaker's).
#[derive(Debug, Clone, Copy)]
enum Spelling {
    /// The breaker's own vocabulary: unprefixed in `[resilience]` it would sit there
    /// unread, as no other component plausibly means it, so it is rejected there.
    Own(&'static str),
    /// A generic name (`name`, `enabled`, `timeout_seconds`, ...): unprefixed in
    /// `[resilience]`, it is left to the application's other components.
    Generic(&'static str),
}

impl Spelling {
    fn text(self) -> &'static str {
        match self {
            Own(text) | Generic(text) => text,
        }
    }
}

/// The table of keys: every setting, in [`Field`]'s order, with all its spellings,
/// each written once. The first is the key named after
/// [`ConfigBuilder`](crate::ConfigBuilder)'s setter, also the field name a
/// [`ConfigError::Invalid`] carries; the others are the seed documents' aliases. Any
/// of them may also be written behind [`PREFIX`]. Every lookup of a key reads this
/// table.
const KEYS: [(Field, &[Spelling]); 16] = [
    (Field::Name, &[Generic("name")]),
    (
        Field::ConsecutiveFailures,
        &[
            Own("consecutive_failures"),
            Generic("failure_threshold"),
            Own("circuit_breaker_threshold"),
        ],
    ),
    (Field::FailureRate, &[Own("failure_rate")]),
    (Field::FailureRateAdaptive, &[Own("failure_rate_adaptive")]),
    (Field::SlidingWindow, &[Own("sliding_window")]),
    (Field::MinimumCalls, &[Own("minimum_calls")]),
    (Field::SlowCall, &[Own("slow_call")]),
    (
        Field::OpenDuration,
        &[
            Own("open_duration"),
            Generic("timeout_seconds"),
            Own("circuit_breaker_timeout"),
        ],
    ),
    (Field::OpenBackoff, &[Own("open_backoff")]),
    (
        Field::HalfOpenPermits,
        &[
            Own("half_open_permits"),
            Own("half_open_max_calls"),
            Own("circuit_breaker_half_open_calls"),
        ],
    ),
    (Field::HalfOpenSuccesses, &[Own("half_open_successes")]),
    (Field::HalfOpenMaxWait, &[Own("half_open_max_wait")]),
    (Field::ProbeInterval, &[Own("probe_interval")]),
    (Field::RampUp, &[Own("ramp_up")]),
    (Field::Backpressure, &[Generic("backpressure")]),
    (
        Field::Enabled,
        &[Generic("enabled"), Own("circuit_breaker_enabled")],
    ),
];

impl Field {
    /// Every setting, in order.
    fn all() -> impl Iterator<Item = Field> {
        KEYS.into_iter().map(|(field, _)| field)
    }

    /// The setting's spellings: its key first, then its aliases.
    fn spellings(self) -> &'static [Spelling] {
        KEYS[self as usize].1
    }

    /// The key named after [`ConfigBuilder`](crate::ConfigBuilder)'s setter; also the
    /// field name a [`ConfigError::Invalid`] carries.
    pub(super) fn key(self) -> &'static str {
        self.spellings()[0].text()
    }

    /// The setting `key` spells exactly (no [`PREFIX`] stripped), and how.
    fn spelled(key: &str) -> Option<(Field, Spelling)> {
        KEYS.into_iter().find_map(|(field, spellings)| {
            spellings
                .iter()
                .find(|spelling| spelling.text() == key)
                .map(|&spelling| (field, spelling))
        })
    }

    /// The setting `key` names: a setting's key or alias, or either behind [`PREFIX`].
    fn of_key(key: &str) -> Option<Field> {
        let exact = |key: &str| Field::spelled(key).map(|(field, _)| field);
        exact(key).or_else(|| {
            key.strip_prefix(PREFIX)
                .filter(|rest| !rest.starts_with(PREFIX))
                .and_then(exact)
        })
    }

    /// The setting a builder field name such as `"open_backoff.max"` belongs to, and
    /// the rest of that name (`"max"`, or `""`).
    pub(super) fn of_builder_field(field: &str) -> Option<(Field, &str)> {
        let (top, rest) = field.split_once('.').unwrap_or((field, ""));
        Field::all()
            .find(|candidate| candidate.key() == top)
            .map(|found| (found, rest))
    }

    /// Whether the setting can change anything for a breaker configured as `config`:
    /// `minimum_calls` only gates the rate rules.
    pub(super) fn used_by(self, config: &Config) -> bool {
        match self {
            Field::MinimumCalls => {
                config.failure_rate().is_some()
                    || config.failure_rate_adaptive().is_some()
                    || config.slow_call().is_some()
            }
            _ => true,
        }
    }

    /// Why the setting can be without effect (see [`Field::used_by`]).
    pub(super) fn needs(self) -> &'static str {
        match self {
            Field::MinimumCalls => {
                "a rate rule (`failure_rate`, `failure_rate_adaptive` or `slow_call`)"
            }
            _ => "nothing",
        }
    }
}

/// The kind of table a key sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// The application's `[resilience]` table, shared with other components: only the
    /// keys starting with `circuit_breaker` are the breaker's.
    Resilience,
    /// `[defaults]`: settings every breaker inherits.
    Defaults,
    /// `[breakers.NAME]`: one breaker's own settings.
    Breaker,
    /// A lone [`Config`] (`Config::from_toml`, `Config`'s `Deserialize`).
    Single,
}

/// What `key`, found at path `at` in a table at `level`, sets: `Ok(None)` for a key
/// of another component (only in `[resilience]`), an error for a key that is unknown
/// or has no place at this level.
pub(super) fn resolve(level: Level, key: &str, at: &str) -> Result<Option<Field>, ConfigError> {
    if level == Level::Resilience && !key.starts_with("circuit_breaker") {
        // The breaker's own vocabulary, unprefixed, would sit there unread.
        if let Some((_, Own(_))) = Field::spelled(key) {
            return Err(file_error(
                at,
                format!(
                    "a circuit breaker setting without the `{PREFIX}` prefix, which \
                     `[resilience]` (shared with other components) requires: write \
                     `{PREFIX}{key}`, or move it to `[defaults]`"
                ),
            ));
        }
        return Ok(None);
    }
    let Some(field) = Field::of_key(key) else {
        let what = match level {
            Level::Resilience => "unknown circuit breaker key",
            _ => "unknown key",
        };
        return Err(file_error(
            at,
            match suggestion(level, key) {
                Some(known) => format!("{what}; did you mean `{known}`?"),
                None => what.to_owned(),
            },
        ));
    };
    match (level, field) {
        (Level::Resilience | Level::Defaults, Field::Name) => Err(file_error(
            at,
            "not allowed here: each breaker is named by its `[breakers.NAME]` table \
             (or by the name passed to `config_for`), so a default name would name none",
        )),
        (Level::Single, Field::Enabled) => Err(file_error(
            at,
            "a single `Config` has no on/off switch: call `CircuitBreaker::disable`, or set \
             it in a registry's `[defaults]` or `[breakers.NAME]`",
        )),
        _ => Ok(Some(field)),
    }
}

/// The known key closest to a misspelled one, if it is close.
fn suggestion(level: Level, key: &str) -> Option<String> {
    let mut known: Vec<String> = Vec::new();
    for (_, spellings) in KEYS {
        for spelling in spellings.iter().map(|spelling| spelling.text()) {
            match level {
                Level::Resilience if spelling.starts_with(PREFIX) => known.push(spelling.into()),
                Level::Resilience => known.push(format!("{PREFIX}{spelling}")),
                _ => known.push(spelling.into()),
            }
        }
    }
    let limit = (key.chars().count() / 4).clamp(1, 3);
    known
        .into_iter()
        .map(|candidate| (edit_distance(key, &candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_at_every_level() {
        for key in [
            "consecutive_failures",
            "failure_threshold",
            "circuit_breaker_threshold",
            "circuit_breaker_consecutive_failures",
        ] {
            for level in [Level::Defaults, Level::Breaker, Level::Single] {
                let found = resolve(level, key, key).unwrap();
                assert_eq!(
                    found,
                    Some(Field::ConsecutiveFailures),
                    "{key} in {level:?}"
                );
            }
        }
        // In [resilience], prefixed keys are the breaker's, generic ones another
        // component's, and the breaker's own vocabulary unprefixed is a mistake.
        let resilience = |key| resolve(Level::Resilience, key, key);
        assert_eq!(
            resilience("circuit_breaker_threshold").unwrap(),
            Some(Field::ConsecutiveFailures)
        );
        assert_eq!(
            resilience("circuit_breaker_consecutive_failures").unwrap(),
            Some(Field::ConsecutiveFailures)
        );
        assert_eq!(resilience("failure_threshold").unwrap(), None);
        assert_eq!(resilience("retry_max_attempts").unwrap(), None);
        assert!(resilience("consecutive_failures").is_err());
        assert!(resilience("circuit_breaker_nonsense").is_err());
        assert_eq!(
            Field::of_key("circuit_breaker_timeout"),
            Some(Field::OpenDuration)
        );
        assert_eq!(
            Field::of_key("circuit_breaker_circuit_breaker_timeout"),
            None
        );
        assert_eq!(
            Field::of_builder_field("open_backoff.max"),
            Some((Field::OpenBackoff, "max"))
        );
    }

    #[test]
    fn the_table_lists_every_setting_once_in_order() {
        let mut seen = std::collections::BTreeSet::new();
        for (index, (field, spellings)) in KEYS.into_iter().enumerate() {
            assert_eq!(field as usize, index, "{field:?} out of order");
            assert!(!spellings.is_empty(), "{field:?} has no key");
            for spelling in spellings {
                assert!(seen.insert(spelling.text()), "{spelling:?} spelled twice");
            }
        }
    }

    #[test]
    fn unprefixed_in_resilience() {
        let resilience = |key| resolve(Level::Resilience, key, key);
        for own in [
            "consecutive_failures",
            "failure_rate",
            "sliding_window",
            "minimum_calls",
            "slow_call",
            "open_duration",
            "open_backoff",
            "half_open_permits",
            "half_open_successes",
            "half_open_max_wait",
            "half_open_max_calls",
        ] {
            assert!(resilience(own).is_err(), "{own}");
        }
        for generic in [
            "name",
            "enabled",
            "backpressure",
            "failure_threshold",
            "timeout_seconds",
        ] {
            assert_eq!(resilience(generic).unwrap(), None, "{generic}");
        }
    }

    #[test]
    fn misspellings_get_a_suggestion() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggestion(Level::Breaker, "opne_duration").as_deref(),
            Some("open_duration")
        );
        assert_eq!(
            suggestion(Level::Resilience, "circuit_breaker_treshold").as_deref(),
            Some("circuit_breaker_threshold")
        );
        assert_eq!(suggestion(Level::Breaker, "colour"), None);
    }
}
