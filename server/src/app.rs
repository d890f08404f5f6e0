//! The whole server as one router: the request/response routes ([`crate::http`]) and the
//! streams ([`crate::transport`]), behind the access checks, the body limits and deadline, and
//! the request metrics, with JSON errors for unknown routes and wrong methods.

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::app_state::AppState;
use crate::http::{deadline, metrics, web};

/// Every route of the server, ready to serve. Tests can call it without a socket.
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit();
    let web_dir = state.settings.web_dir.clone();
    let routes = Router::new()
        .merge(crate::http::routes())
        .merge(crate::transport::routes())
        .method_not_allowed_fallback(web::method_not_allowed)
        .fallback_service(web::static_files(&web_dir));
    let body_timeout = state.settings.body_read_timeout;
    let routes = crate::auth::layer(routes, &state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(body_timeout, deadline::body_deadline));
    metrics::observe(routes, &state).with_state(state)
}
