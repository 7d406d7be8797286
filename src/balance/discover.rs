//! [`EndpointDiscover`]: a `Discover` whose endpoints come with their breakers.

use std::fmt;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::stream::{Stream, TryStream};
use pin_project_lite::pin_project;
use tower::discover::Change;

use crate::balance::endpoint::EndpointService;
use crate::balance::group::EndpointBreakers;
use crate::classify::DefaultClassifier;
use crate::middleware::service::{CircuitBreakerService, Waits};

pin_project! {
    /// A [`Discover`](tower::discover::Discover) whose every endpoint is guarded by its
    /// breaker in an [`EndpointBreakers`] group. Made by
    /// [`EndpointBreakers::discover`].
    ///
    /// An inserted endpoint joins the group and is yielded as an [`EndpointService`]
    /// that is not ready while its breaker rejects, so that the balancer routes around
    /// it; once the balancer drops it (a removed endpoint, or one whose `poll_ready`
    /// failed), the endpoint leaves the group and no longer counts toward the ejection
    /// cap. Removals are passed on as they are. The breaker adds no load of its own:
    /// [`Load`](tower::load::Load) is the inner service's, so wrap the endpoints in a
    /// load measure first, or this discover in one (e.g.
    /// [`PendingRequestsDiscover`](tower::load::PendingRequestsDiscover)).
    pub struct EndpointDiscover<D, K, C = DefaultClassifier> {
        #[pin]
        discover: D,
        group: EndpointBreakers<K>,
        classifier: C,
    }
}

impl<K> EndpointBreakers<K> {
    /// Wraps `discover` so that each endpoint it yields is guarded by its breaker in
    /// this group, classified by [`DefaultClassifier`] (`Err` fails).
    pub fn discover<D>(&self, discover: D) -> EndpointDiscover<D, K> {
        self.discover_classified(discover, DefaultClassifier)
    }

    /// [`discover`](Self::discover), with `classifier` deciding each result's
    /// [`Outcome`](crate::Outcome) (e.g. [`HttpClassifier`](crate::http::HttpClassifier)
    /// for HTTP endpoints, so that a `500` fails).
    pub fn discover_classified<D, C>(
        &self,
        discover: D,
        classifier: C,
    ) -> EndpointDiscover<D, K, C> {
        EndpointDiscover::new(discover, self.clone(), classifier)
    }
}

impl<D, K, C> EndpointDiscover<D, K, C> {
    fn new(discover: D, group: EndpointBreakers<K>, classifier: C) -> Self {
        EndpointDiscover {
            discover,
            group,
            classifier,
        }
    }

    /// The group the endpoints join.
    pub fn group(&self) -> &EndpointBreakers<K> {
        &self.group
    }
}

impl<D, K, S, C> Stream for EndpointDiscover<D, K, C>
where
    D: TryStream<Ok = Change<K, S>>,
    K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
    C: Clone,
{
    type Item = Result<Change<K, EndpointService<S, C>>, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let change = match ready!(this.discover.try_poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Err(error)) => return Poll::Ready(Some(Err(error))),
            Some(Ok(Change::Insert(key, service))) => {
                let (breaker, membership) = this.group.join(&key);
                let classifier = this.classifier.clone();
                let guarded =
                    CircuitBreakerService::waiting(service, breaker, classifier, Waits::Always);
                Change::Insert(key, EndpointService::new(guarded, membership))
            }
            Some(Ok(Change::Remove(key))) => Change::Remove(key),
        };
        Poll::Ready(Some(Ok(change)))
    }
}

impl<D: fmt::Debug, K, C> fmt::Debug for EndpointDiscover<D, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointDiscover")
            .field("discover", &self.discover)
            .field("group", &self.group)
            .finish()
    }
}
