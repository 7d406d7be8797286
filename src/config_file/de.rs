//! `Deserialize` for [`Config`] and [`RegistryConfig`]: the values are gathered as a
//! TOML table, then read and validated exactly like a TOML file.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use toml::{Table, Value};

use crate::config::Config;
use crate::error::ConfigError;

use super::keys::TOP_LEVEL;
use super::registry::RegistryConfig;
use super::values::{expect_table, file_error, join};

/// Deserializes from any self-describing `serde` format (TOML, JSON, YAML, ...) with
/// the keys of [`Config::from_toml`], validated the same way; an error names the key
/// as written.
///
/// ```
/// use tower_circuit_breaker::Config;
///
/// let config: Config = serde_json::from_str(r#"{"circuit_breaker_threshold": 3, "open_duration": "10s"}"#)?;
/// assert_eq!(config.consecutive_failures(), Some(3));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Tree::deserialize(deserializer)?
            .into_value("")
            .map_err(D::Error::custom)?;
        let table = expect_table(&value, "").map_err(D::Error::custom)?;
        Config::from_table(table).map_err(D::Error::custom)
    }
}

/// Deserializes from any self-describing `serde` format (TOML, JSON, YAML, ...): a map
/// with `resilience`, `defaults` and `breakers`, read and validated like
/// [`RegistryConfig::from_toml`]. Embed it as a field of the application's
/// configuration under any key, or `#[serde(flatten)]` it to read those three keys
/// from the top level while the application's other fields take the rest.
///
/// ```
/// use serde::Deserialize;
/// use tower_circuit_breaker::RegistryConfig;
///
/// #[derive(Deserialize)]
/// struct App {
///     resilience: RegistryConfig,
/// }
///
/// let app: App = serde_json::from_str(r#"{
///     "resilience": {
///         "defaults": {"circuit_breaker_threshold": 3},
///         "breakers": {"payments": {"failure_rate": 0.5}}
///     }
/// }"#)?;
/// assert_eq!(app.resilience.config_for("payments").consecutive_failures(), Some(3));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for RegistryConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As a struct, so that `#[serde(flatten)]` hands over only these keys.
        deserializer.deserialize_struct("RegistryConfig", &TOP_LEVEL, RegistryVisitor)
    }
}

struct RegistryVisitor;

impl<'de> Visitor<'de> for RegistryVisitor {
    type Value = RegistryConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with `resilience`, `defaults` and `breakers`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RegistryConfig, A::Error> {
        let mut table = Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if !TOP_LEVEL.contains(&key.as_str()) {
                return Err(A::Error::custom(file_error(
                    &join("", &key),
                    "unknown key (expected `defaults`, `breakers` or `resilience`)",
                )));
            }
            if table.contains_key(&key) {
                return Err(A::Error::custom(file_error(&join("", &key), "given twice")));
            }
            let value = map
                .next_value::<Tree>()?
                .into_value(&key)
                .map_err(A::Error::custom)?;
            table.insert(key, value);
        }
        RegistryConfig::from_table(&table, true).map_err(A::Error::custom)
    }
}

/// Any self-describing format's value, before it becomes a TOML [`Value`]: so that a
/// null (which TOML lacks) or an integer beyond `i64` is reported at its key path.
enum Tree {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl Tree {
    /// The TOML value, the tree sitting at key path `at`.
    fn into_value(self, at: &str) -> Result<Value, ConfigError> {
        Ok(match self {
            Tree::Null => {
                return Err(file_error(
                    at,
                    "is null: leave the key out to keep the inherited or default value",
                ))
            }
            Tree::Bool(b) => Value::Boolean(b),
            Tree::Integer(n) => match i64::try_from(n) {
                Ok(n) => Value::Integer(n),
                Err(_) => return Err(file_error(at, format!("{n} is out of range"))),
            },
            Tree::Float(x) => Value::Float(x),
            Tree::String(text) => Value::String(text),
            Tree::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| item.into_value(&format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Map(entries) => {
                let mut table = Table::new();
                for (key, item) in entries {
                    let path = join(at, &key);
                    if table.contains_key(&key) {
                        return Err(file_error(&path, "given twice"));
                    }
                    let value = item.into_value(&path)?;
                    table.insert(key, value);
                }
                Value::Table(table)
            }
        })
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
        Ok(Tree::Integer(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Integer(n.into()))
    }

    fn visit_i128<E>(self, n: i128) -> Result<Tree, E> {
        Ok(Tree::Integer(n))
    }

    fn visit_u128<E>(self, n: u128) -> Result<Tree, E> {
        Ok(Tree::Integer(i128::try_from(n).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Tree, E> {
        Ok(Tree::Float(x))
    }

    fn visit_str<E>(self, text: &str) -> Result<Tree, E> {
        Ok(Tree::String(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Tree, E> {
        Ok(Tree::String(text))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Tree, D::Error> {
        Tree::deserialize(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Tree::Map(entries))
    }
}
