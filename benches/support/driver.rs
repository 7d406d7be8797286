//! The synchronous driver shared by the hot-path benches, included by path
//! (`#[path = "support/driver.rs"] mod driver;`).

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use futures::FutureExt;
use tower::Service;

/// One synchronous call: poll_ready with a no-op waker, call, poll the future once.
pub fn call_once<S>(svc: &mut S, cx: &mut Context<'_>, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => panic!("bench services are always ready"),
    }
    svc.call(request)
        .now_or_never()
        .expect("bench futures complete at once")
}

/// Always succeeds.
pub fn echo(request: u64) -> Ready<Result<u64, Infallible>> {
    ready(Ok(request))
}
