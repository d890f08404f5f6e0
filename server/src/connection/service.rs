//! The router as one connection's hyper service: each request carries the peer address
//! (`ConnectInfo`) and the connection's [`ConnectionCut`], and counts as served, for the
//! connection's [`Activity`], until its response body is done.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::Request;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::activity::{Activity, Serving};

/// The router, serving one connection.
#[derive(Clone)]
pub struct ConnectionService {
    pub router: Router,
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
    /// Cancelled to cut the connection.
    pub cut: CancellationToken,
}

/// Cuts the connection a request came on (a request extension): its socket fails at once,
/// even under a write blocked on a client that does not read, so its task ends and drops what
/// it held. A streaming consumer cut as slow pulls it.
#[derive(Clone)]
pub struct ConnectionCut(CancellationToken);

impl ConnectionCut {
    pub fn cut(&self) {
        self.0.cancel();
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(ConnectionCut(self.cut.clone()));
        let serving = self.activity.begin();
        let response = self.router.clone().oneshot(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Body::new(ServedBody { body, _serving: serving })))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request when it is done or dropped.
    struct ServedBody {
        #[pin]
        body: Body,
        _serving: Serving,
    }
}

impl http_body::Body for ServedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
