//! [`EndpointBreakersBuilder`]: the group's settings beyond each endpoint's config.

use std::marker::PhantomData;

use crate::balance::group::EndpointBreakers;
use crate::config::Config;
use crate::error::ConfigError;
use crate::registry::Registry;

/// Builds an [`EndpointBreakers`] group. Made by [`EndpointBreakers::builder`].
#[derive(Debug, Clone)]
pub struct EndpointBreakersBuilder<K> {
    config: Config,
    max_ejection_percent: u32,
    registry: Option<Registry>,
    key: PhantomData<fn(K)>,
}

impl<K> EndpointBreakers<K> {
    /// A builder for a group whose endpoints' breakers are built from `config`.
    pub fn builder(config: Config) -> EndpointBreakersBuilder<K> {
        EndpointBreakersBuilder::new(config)
    }

    /// A group with the default settings, or an error naming a setting of `config`
    /// that endpoint breakers do not support
    /// ([`ramp_up`](crate::ConfigBuilder::ramp_up)).
    pub fn new(config: Config) -> Result<EndpointBreakers<K>, ConfigError> {
        Self::builder(config).build()
    }
}

impl<K> EndpointBreakersBuilder<K> {
    fn new(config: Config) -> EndpointBreakersBuilder<K> {
        EndpointBreakersBuilder {
            config,
            max_ejection_percent: EndpointBreakers::<K>::DEFAULT_MAX_EJECTION_PERCENT,
            registry: None,
            key: PhantomData,
        }
    }

    /// At most this share of the group's endpoints, in percent, may be out of rotation
    /// (open, half-open or forced open) at once, rounded down, and at least one
    /// whatever the share (so `0` lets one out at a time, as in Envoy). A trip that
    /// would put more out is refused: the endpoint stays in rotation, its rules start
    /// over, a warning is logged and [`Event::TripCapped`](crate::Event::TripCapped)
    /// is sent. An operator's [`force_open`](crate::CircuitBreaker::force_open) and an
    /// open learned from the fleet (`fleet` feature) count toward the cap but are never
    /// refused, so they may take the count over it.
    ///
    /// Default 100: every endpoint may be ejected, and the group fails fast when all
    /// are (see [`FailFast`](crate::balance::FailFast)). Envoy and gRPC default to 10
    /// %, which keeps 90 % of the endpoints in rotation whatever they answer.
    pub fn max_ejection_percent(self, percent: u32) -> Self {
        EndpointBreakersBuilder {
            max_ejection_percent: percent,
            ..self
        }
    }

    /// Also keeps every endpoint's breaker in `registry` while it is in the group
    /// (inserted when the endpoint is discovered, removed when it is), so that the
    /// application's health report and metrics see them beside its other breakers.
    ///
    /// ```
    /// use tower_circuit_breaker::balance::EndpointBreakers;
    /// use tower_circuit_breaker::{Config, Registry};
    ///
    /// let registry = Registry::new();
    /// let group = EndpointBreakers::<std::net::SocketAddr>::builder(Config::builder().name("users").build()?)
    ///     .registry(&registry)
    ///     .build()?;
    /// // Once `group.discover(..)` yields endpoint 10.0.0.7:8080, the registry holds
    /// // its breaker as "users/10.0.0.7:8080".
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn registry(self, registry: &Registry) -> Self {
        EndpointBreakersBuilder {
            registry: Some(registry.clone()),
            ..self
        }
    }

    /// The group, or an error naming the setting that is out of range.
    pub fn build(self) -> Result<EndpointBreakers<K>, ConfigError> {
        if let Some(ramp) = self.config.ramp_up {
            return Err(ConfigError::invalid(
                "ramp_up",
                ramp,
                "is not supported by endpoint breakers: a balancer polls an endpoint that \
                 sheds a call again at once, so the ramp's share would not hold",
            ));
        }
        if self.max_ejection_percent > 100 {
            return Err(ConfigError::invalid(
                "max_ejection_percent",
                self.max_ejection_percent,
                "must be at most 100",
            ));
        }
        Ok(EndpointBreakers::with(
            self.config,
            self.max_ejection_percent,
            self.registry,
        ))
    }
}
