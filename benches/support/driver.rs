//! The synchronous driver shared by the hot-path benches, included by path
//! (`#[path = "support/driver.rs"] mod driver;`).

use std::convert::Infallible;
use std::future::{ready as ready_future, Future, Ready};
use std::pin::pin;
use std::task::{Context, Poll};

use futures::FutureExt;
use tower::Service;

/// One synchronous call: poll_ready with a no-op waker, call, poll the future once
/// where it was pinned, as an executor polls a task's future in place.
#[inline(always)]
pub fn call_once<S>(svc: &mut S, cx: &mut Context<'_>, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    ready(svc, cx)?;
    match pin!(svc.call(request)).poll(cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("bench futures complete at once"),
    }
}

/// Like [`call_once`], but the future is first moved by value (into `now_or_never`),
/// as a caller that stores or returns it would: the cost of that copy is the
/// difference between the two.
#[allow(dead_code)] // used by closed_path only
#[inline(always)]
pub fn call_once_moved<S>(svc: &mut S, cx: &mut Context<'_>, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    ready(svc, cx)?;
    svc.call(request)
        .now_or_never()
        .expect("bench futures complete at once")
}

fn ready<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>) -> Result<(), S::Error> {
    match svc.poll_ready(cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("bench services are always ready"),
    }
}

/// Always succeeds.
pub fn echo(request: u64) -> Ready<Result<u64, Infallible>> {
    ready_future(Ok(request))
}
