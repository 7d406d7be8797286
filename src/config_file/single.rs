//! A lone [`Config`]'s file: [`Config::from_toml`].

use toml::Table;

use crate::config::Config;
use crate::error::ConfigError;

use super::build::{build, check_used};
use super::keys::Level;
use super::layer::Layer;
use super::values::parse_table;

impl Config {
    /// One breaker's configuration from a TOML table of [`ConfigBuilder`] keys, e.g.
    /// `consecutive_failures = 3` and `open_duration = "30s"`, with the aliases listed on
    /// [`RegistryConfig`]; validated like [`ConfigBuilder::build`], with errors naming
    /// the key as written.
    ///
    /// [`ConfigBuilder`]: crate::ConfigBuilder
    /// [`ConfigBuilder::build`]: crate::ConfigBuilder::build
    /// [`RegistryConfig`]: crate::RegistryConfig
    ///
    /// ```
    /// use tower_circuit_breaker::Config;
    ///
    /// let config = Config::from_toml("name = \"db\"\nfailure_rate = 0.5\nsliding_window = { calls = 50 }")?;
    /// assert_eq!(config.failure_rate(), Some(0.5));
    /// let err = Config::from_toml("failure_rate = 1.5").unwrap_err();
    /// assert_eq!(err.field(), "failure_rate");
    /// let err = Config::from_toml("circuit_breaker_threshold = 0").unwrap_err();
    /// assert_eq!(err.field(), "circuit_breaker_threshold");
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_table(&parse_table(text)?)
    }

    /// Reads a lone configuration's table.
    pub(super) fn from_table(table: &Table) -> Result<Config, ConfigError> {
        let layer = Layer::parse(table, "", Level::Single)?;
        let config = build(&[&layer], None)?;
        check_used(&layer, |_| vec![&config], "this configuration has none")?;
        Ok(config)
    }
}
