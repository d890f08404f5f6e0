//! `GET /metrics`, and the layers that observe every request: a span per request (method,
//! matched route, status, latency) and the `restmq_http_requests_total` counter.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;
use tracing::field::Empty;
use tracing::Span;

use crate::error::ApiError;
use crate::metrics::text;
use crate::state::AppState;

/// The `route` label of requests no route matched (static files, unknown paths).
const UNMATCHED: &str = "unmatched";

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// `GET /metrics`: Prometheus text format.
async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let page = text::render(&state.broker).await?;
    Ok(([(CONTENT_TYPE, text::CONTENT_TYPE)], page).into_response())
}

/// Wraps every route of `router` in the request span and the request counter. Applied per
/// route (axum's `Router::layer`), so the matched route is known.
pub fn observe(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(middleware::from_fn_with_state(state.clone(), count_request)).layer(
        TraceLayer::new_for_http()
            .make_span_with(request_span as fn(&Request<Body>) -> Span)
            .on_response(record_response as fn(&Response<Body>, Duration, &Span)),
    )
}

fn route_of(req: &Request) -> &str {
    req.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str)
}

async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned(); // an `Arc<str>` clone
    let res = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    state.broker.metrics().count_request(route, res.status().as_u16());
    res
}

fn request_span(req: &Request<Body>) -> Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = route_of(req),
        status = Empty,
        latency_ms = Empty,
    )
}

fn record_response(res: &Response<Body>, latency: Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    span.record("latency_ms", latency.as_micros() as f64 / 1000.0);
    tracing::debug!("answered");
}
