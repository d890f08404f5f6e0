//! `GET /metrics`, and the layers that observe every request: a span per request (method,
//! matched route, status, latency) and the `restmq_http_requests_total` counter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing::Span;

use super::exposition as text;
use crate::app_state::AppState;
use crate::auth::{guard, Rule};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The `route` label of requests no route matched (static files, unknown paths).
const UNMATCHED: &str = "unmatched";

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape.layer(guard(Rule::admin()))))
}

/// `GET /metrics`: Prometheus text format.
async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let page = text::render(&state.broker).await?;
    Ok(([(CONTENT_TYPE, text::CONTENT_TYPE)], page).into_response())
}

/// Wraps every route of `router` in the request span and the request counter. Applied per
/// route (axum's `Router::layer`), so the matched route is known.
pub fn observe(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(Observe { metrics: state.broker.metrics().clone() })
}

/// The layer of [`observe`]: one plain service around each route (no boxing, no clone of
/// the route per request).
#[derive(Clone)]
struct Observe {
    metrics: Arc<Metrics>,
}

impl<S> Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Clone)]
struct Observed<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned(); // an `Arc<str>` clone
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
            status = Empty,
            latency_ms = Empty,
        );
        let inner = span.in_scope(|| self.inner.call(req));
        Answer { inner, span, route, start: Instant::now(), metrics: self.metrics.clone() }
    }
}

pin_project! {
    /// A route's answer on its way: counted and recorded in the span when ready.
    struct Answer<F> {
        #[pin]
        inner: F,
        span: Span,
        route: Option<MatchedPath>,
        start: Instant,
        metrics: Arc<Metrics>,
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let answer = ready!(this.inner.poll(cx));
        if let Ok(res) = &answer {
            let status = res.status().as_u16();
            this.metrics.count_request(this.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str), status);
            this.span.record("status", status);
            this.span.record("latency_ms", this.start.elapsed().as_micros() as f64 / 1000.0);
            tracing::debug!("answered");
        }
        Poll::Ready(answer)
    }
}
