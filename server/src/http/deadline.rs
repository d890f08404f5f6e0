//! A deadline for request bodies: a body must arrive whole within `--body-read-timeout-secs`
//! of its request reaching a handler, or the request is answered `408 request_timeout` and
//! its connection closed. Without it a client trickling a body byte by byte holds a
//! connection (and its place under `--max-connections`) for as long as it likes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{HeaderValue, CONNECTION};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// Wraps every request body in the deadline (a body with nothing to read is left as it is).
pub async fn body_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limit;
    let req = req
        .map(|body| Body::new(DeadlineBody { inner: body, deadline, sleep: None, expired: expired.clone() }));
    let res = next.run(req).await;
    if !expired.load(Ordering::Acquire) {
        return res;
    }
    let mut res = ApiError::RequestTimeout(limit.as_secs()).into_response();
    res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    res
}

/// A body that fails once its deadline has passed. The timer is only set the first time the
/// body has to wait for the client: a body that came with its headers costs no timer.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new("the request body did not arrive in time"))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
