//! The HTTP surface: RestMQ's routes, merged with the streaming transports, under one
//! router with JSON errors for unknown routes, wrong methods and oversize bodies.

pub mod admin;
pub mod args;
pub mod batch;
pub mod collectd;
pub mod command;
pub mod deadline;
pub mod look;
pub mod metrics;
pub mod reply;
pub mod rest;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::state::AppState;
use crate::transport;

/// Every route of the server, ready to serve. Tests can call it without a socket.
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit();
    let web_dir = state.settings.web_dir.clone();
    let routes = Router::new()
        .merge(rest::routes())
        .merge(command::routes())
        .merge(admin::routes())
        .merge(look::routes())
        .merge(collectd::routes())
        .merge(transport::routes())
        .merge(metrics::routes())
        .method_not_allowed_fallback(web::method_not_allowed)
        .fallback_service(web::static_files(&web_dir));
    let body_timeout = state.settings.body_read_timeout;
    let routes = crate::auth::layer(routes, &state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(body_timeout, deadline::body_deadline));
    metrics::observe(routes, &state).with_state(state)
}
