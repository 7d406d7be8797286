//! [`EndpointBreakers`]: the group of per-endpoint breakers, keyed by endpoint.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock, Weak};

use crate::breaker::{CircuitBreaker, EjectionBudget};
use crate::config::Config;
use crate::error::CircuitOpen;
use crate::health::HealthReport;
use crate::lock::unpoisoned;
use crate::registry::Registry;
use crate::state::State;

/// One breaker per endpoint of a load balancer, built from one config, with a cap on
/// how many endpoints may be out of rotation at once (see the [module](crate::balance)).
///
/// - [`discover`](Self::discover) wraps a [`Discover`](tower::discover::Discover) (e.g.
///   [`ServiceList`](tower::discover::ServiceList), or a channel of
///   [`Change`](tower::discover::Change)s) so that each endpoint it yields comes with
///   its breaker; a removed endpoint leaves the group.
/// - [`fail_fast`](Self::fail_fast) wraps the balancer so that callers fail fast when
///   every endpoint is out.
///
/// Every endpoint's breaker is named `"{config name}/{key}"`. An endpoint's service is
/// never ready while its breaker rejects, which is how the balancer routes around it:
/// the config's [`backpressure`](crate::ConfigBuilder::backpressure) is implied (and
/// reads `true` in the members' configs). A config with
/// [`ramp_up`](crate::ConfigBuilder::ramp_up) is refused: a balancer polls an endpoint
/// that sheds a call again at once, so the ramp's share would not hold.
///
/// An endpoint is a member while a service yielded for it is alive: the balancer
/// dropping it (on `Change::Remove`, or after its `poll_ready` failed) takes it out of
/// the group and of the cap's count. An endpoint inserted again under the same key
/// while its service is alive (a replacement) keeps its breaker; once removed, it comes
/// back with a new one. Several [`discover`](Self::discover) streams over one group
/// share the members by key.
///
/// Clones share one group.
pub struct EndpointBreakers<K> {
    pub(super) shared: Arc<Group<K>>,
}

pub(super) struct Group<K> {
    /// Every member's config: the group's, with backpressure on.
    config: Config,
    pub(super) budget: Arc<EjectionBudget>,
    members: RwLock<HashMap<K, Member>>,
    /// Where the members are also kept, if the builder named one.
    registry: Option<Registry>,
    /// Calls [`FailFast`](crate::balance::FailFast) rejected because every endpoint was out.
    rejected: AtomicU64,
}

/// One endpoint in the group: its breaker, and the holder its services share.
struct Member {
    breaker: CircuitBreaker,
    holder: Weak<Holder>,
}

/// Shared by the services yielded for one endpoint; the last one dropped takes the
/// endpoint out of the group (unless a new service took it over meanwhile).
pub(super) struct Holder {
    leave: Option<Box<dyn FnOnce(*const Holder) + Send + Sync>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(leave) = self.leave.take() {
            leave(self);
        }
    }
}

/// What an endpoint's services keep: a shared [`Holder`].
pub(super) type Membership = Arc<Holder>;

/// What [`FailFast`](crate::balance::FailFast) needs of a group, whatever its key type.
pub(super) trait AllOut: Send + Sync {
    /// The ejection counts (a cheap first check).
    fn budget(&self) -> &Arc<EjectionBudget>;

    /// The rejection to answer with when no endpoint may be called now; `None` when
    /// one may (or the group has none: the balancer decides then).
    fn refusal(&self) -> Option<CircuitOpen>;

    /// Counts a call rejected because every endpoint was out.
    fn count_rejection(&self);
}

impl<K> EndpointBreakers<K> {
    /// Default [`max_ejection_percent`](crate::balance::EndpointBreakersBuilder::max_ejection_percent):
    /// every endpoint may be ejected.
    pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 100;

    /// The group as [`FailFast`](crate::balance::FailFast) sees it.
    pub(super) fn all_out_check(&self) -> Arc<dyn AllOut>
    where
        K: Send + Sync + 'static,
    {
        self.shared.clone()
    }

    pub(super) fn with(
        config: Config,
        max_ejection_percent: u32,
        registry: Option<Registry>,
    ) -> EndpointBreakers<K> {
        EndpointBreakers {
            shared: Arc::new(Group {
                config: Config {
                    backpressure: true,
                    ..config
                },
                budget: Arc::new(EjectionBudget::new(max_ejection_percent)),
                members: RwLock::new(HashMap::new()),
                registry,
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// The group's name (its config's); each endpoint's breaker is named
    /// `"{name}/{key}"`.
    pub fn name(&self) -> &str {
        self.shared.config.name()
    }

    /// The configuration every endpoint's breaker is built from.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The most endpoints that may be out of rotation at once, in percent.
    pub fn max_ejection_percent(&self) -> u32 {
        self.shared.budget.max_percent()
    }

    /// How many endpoints the group has now.
    pub fn len(&self) -> usize {
        self.shared.budget.members() as usize
    }

    /// Whether the group has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many endpoints are out of rotation now: open, half-open or forced open.
    pub fn ejected(&self) -> usize {
        self.shared.budget.ejected() as usize
    }

    /// How many trips the ejection cap has refused so far.
    pub fn capped_trips(&self) -> u64 {
        self.shared.budget.capped()
    }

    /// How many calls [`FailFast`](crate::balance::FailFast) has rejected because every endpoint was out.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Relaxed)
    }

    /// Every endpoint's breaker with its key, in no particular order.
    pub fn breakers(&self) -> Vec<(K, CircuitBreaker)>
    where
        K: Clone,
    {
        unpoisoned(self.shared.members.read())
            .iter()
            .map(|(key, member)| (key.clone(), member.breaker.clone()))
            .collect()
    }

    /// The health of every endpoint's breaker, sorted by name.
    pub fn health(&self) -> HealthReport {
        let mut breakers: Vec<CircuitBreaker> = unpoisoned(self.shared.members.read())
            .values()
            .map(|member| member.breaker.clone())
            .collect();
        breakers.sort_by(|a, b| a.name().cmp(b.name()));
        HealthReport::of(breakers.iter())
    }

    /// When no endpoint may be called now, the rejection [`FailFast`](crate::balance::FailFast) answers with:
    /// state `Open`, named after the group, `retry_after` the earliest moment an
    /// endpoint may be probed (`None` if every endpoint is forced open). `None` while
    /// some endpoint may be called, and while the group has none.
    pub fn all_out(&self) -> Option<CircuitOpen>
    where
        K: Send + Sync,
    {
        self.shared.refusal()
    }
}

impl<K: Hash + Eq> EndpointBreakers<K> {
    /// The breaker of the endpoint `key`, if it is in the group.
    pub fn get(&self, key: &K) -> Option<CircuitBreaker> {
        unpoisoned(self.shared.members.read())
            .get(key)
            .map(|member| member.breaker.clone())
    }

    /// The breaker of `key`, made a member if it is not one yet, and the membership
    /// its service keeps: the endpoint stays in the group until the last service
    /// holding it is dropped.
    pub(super) fn join(&self, key: &K) -> (CircuitBreaker, Membership)
    where
        K: Clone + fmt::Display + Send + Sync + 'static,
    {
        let group = &*self.shared;
        let mut members = unpoisoned(group.members.write());
        if let Some(member) = members.get_mut(key) {
            let held = match member.holder.upgrade() {
                Some(held) => held,
                None => {
                    // Its last service is being dropped right now: this service takes
                    // the endpoint over, breaker and all, and the dropped holder finds
                    // itself replaced and takes nothing out.
                    let held = self.holder(key);
                    member.holder = Arc::downgrade(&held);
                    held
                }
            };
            return (member.breaker.clone(), held);
        }
        let config = group
            .config
            .clone()
            .renamed(format!("{}/{key}", group.config.name));
        let breaker = CircuitBreaker::in_group(config, Arc::clone(&group.budget));
        let held = self.holder(key);
        members.insert(
            key.clone(),
            Member {
                breaker: breaker.clone(),
                holder: Arc::downgrade(&held),
            },
        );
        if let Some(registry) = &group.registry {
            registry.insert(breaker.clone());
        }
        (breaker, held)
    }

    /// A holder for `key`'s services: dropped, it takes `key` out of the group if it is
    /// still the one the group knows.
    fn holder(&self, key: &K) -> Membership
    where
        K: Clone + Send + Sync + 'static,
    {
        let (group, key) = (self.clone(), key.clone());
        Arc::new(Holder {
            leave: Some(Box::new(move |holder| group.leave(&key, holder))),
        })
    }

    /// Takes `key` out of the group (and the registry), its ejection slot freed, if
    /// `holder` is still its holder.
    fn leave(&self, key: &K, holder: *const Holder) {
        let group = &*self.shared;
        let removed = {
            let mut members = unpoisoned(group.members.write());
            let ours = members
                .get(key)
                .is_some_and(|member| std::ptr::eq(member.holder.as_ptr(), holder));
            if !ours {
                return;
            }
            members.remove(key)
        };
        let Some(Member { breaker, .. }) = removed else {
            return;
        };
        breaker.leave_group();
        if let Some(registry) = &group.registry {
            // Unless the name was taken over by a breaker from elsewhere.
            if registry
                .get(breaker.name())
                .is_some_and(|kept| kept.is_same_breaker(&breaker))
            {
                registry.remove(breaker.name());
            }
        }
    }
}

impl<K: Send + Sync> AllOut for Group<K> {
    fn budget(&self) -> &Arc<EjectionBudget> {
        &self.budget
    }

    fn refusal(&self) -> Option<CircuitOpen> {
        // Every endpoint out of rotation is counted as ejected: while fewer are, some
        // endpoint may be called and no member needs reading.
        let members = self.budget.members();
        if members == 0 || self.budget.ejected() < members {
            return None;
        }
        let mut retry_after = None;
        for member in unpoisoned(self.members.read()).values() {
            let refused = member.breaker.refusal()?;
            retry_after = match (retry_after, refused.retry_after()) {
                (Some(earliest), Some(this)) => Some(std::cmp::min(earliest, this)),
                (earliest, this) => earliest.or(this),
            };
        }
        Some(CircuitOpen {
            name: self.config.name.clone(),
            state: State::Open,
            retry_after,
        })
    }

    fn count_rejection(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }
}

impl<K> Clone for EndpointBreakers<K> {
    fn clone(&self) -> Self {
        EndpointBreakers {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for EndpointBreakers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBreakers")
            .field("name", &self.name())
            .field("endpoints", &self.len())
            .field("ejected", &self.ejected())
            .field("max_ejection_percent", &self.max_ejection_percent())
            .finish()
    }
}
