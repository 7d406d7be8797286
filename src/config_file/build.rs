//! Building configurations from layers, reporting a rejected value at the key that
//! wrote it, and rejecting settings that would do nothing.

use crate::config::{Config, ConfigBuilder};
use crate::error::ConfigError;

use super::keys::{Field, Level};
use super::layer::Layer;
use super::values::{file_error, join};

/// The configuration `layers` describe, most specific first, named `name` if given.
/// A value [`ConfigBuilder::build`] rejects is reported at the key that wrote it, as
/// the file spelled it, even when inherited from `[defaults]` or `[resilience]`.
pub(super) fn build(layers: &[&Layer], name: Option<&str>) -> Result<Config, ConfigError> {
    let mut builder = ConfigBuilder::default();
    for layer in layers.iter().rev() {
        builder = layer.builder.clone().over(builder);
    }
    if let Some(name) = name {
        builder = builder.name(name.to_owned());
    }
    let config = builder.build().map_err(|error| locate(error, layers))?;
    let backoff = config.open_backoff;
    if backoff.grows() && backoff.max == Some(config.open_duration) {
        // `max` caps the grown duration: equal to the base, it leaves nothing to grow.
        return Err(locate(
            ConfigError::invalid(
                "open_backoff.max",
                config.open_duration,
                "equals open_duration, so the open duration can never grow",
            ),
            layers,
        ));
    }
    Ok(config)
}

/// Rewrites a [`ConfigError::Invalid`] naming a builder field into a
/// [`ConfigError::File`] naming the key path the file used for it.
fn locate(error: ConfigError, layers: &[&Layer]) -> ConfigError {
    let ConfigError::Invalid { field, value, rule } = &error else {
        return error;
    };
    let top = layers.first().map_or("", |layer| layer.path.as_str());
    let Some((setting, rest)) = Field::of_builder_field(field) else {
        return file_error(&join(top, field), error);
    };
    let Some(origin) = layers
        .iter()
        .position(|layer| layer.written.contains_key(&setting))
    else {
        return file_error(&join(top, field), error);
    };
    let layer = layers[origin];
    let written = match rest {
        "" => layer.written[&setting].clone(),
        rest => format!("{}.{rest}", layer.written[&setting]),
    };
    let path = match (layer.key_path(setting), rest) {
        (Some(key), "") => key,
        (Some(key), rest) => format!("{key}.{rest}"),
        (None, _) => written.clone(),
    };
    let mut message = format!("invalid `{written}` = {value}: {rule}");
    // Rules relating two settings: say where the other one comes from.
    let other = match (setting, rest) {
        (Field::OpenBackoff, "max") => Some((
            Field::OpenDuration,
            format!("the default, {:?}", Config::DEFAULT_OPEN_DURATION),
        )),
        (Field::MinimumCalls, _) if rule.contains("window") => Some((
            Field::SlidingWindow,
            format!("the default, {:?}", Config::DEFAULT_WINDOW),
        )),
        _ => None,
    };
    if let Some((other, default)) = other {
        match layers.iter().find_map(|layer| layer.key_path(other)) {
            Some(key) => message.push_str(&format!("; {} is `{key}`", other.key())),
            None => message.push_str(&format!("; {} is {default}", other.key())),
        }
    }
    if origin > 0 && layers[0].level == Level::Breaker {
        message.push_str(&format!(" (inherited by `{top}`)"));
    }
    file_error(&path, message)
}

/// Rejects each setting written in `layer` that has no effect on any of `users`, the
/// configurations that take it (see [`Field::used_by`]); `who` says that none of them
/// can use it ("breaker `x` has none").
pub(super) fn check_used<'a>(
    layer: &Layer,
    users: impl Fn(Field) -> Vec<&'a Config>,
    who: &str,
) -> Result<(), ConfigError> {
    for (&field, _) in layer.written.iter() {
        if !users(field).iter().any(|config| field.used_by(config)) {
            let path = layer.key_path(field).unwrap_or_default();
            return Err(file_error(
                &path,
                format!(
                    "has no effect: it only matters with {}, and {who}",
                    field.needs()
                ),
            ));
        }
    }
    Ok(())
}
