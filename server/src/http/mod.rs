//! RestMQ's request/response routes and the added ones (browse, history, consumers,
//! metrics, health), the JSON replies, the web app's files and the request layers the app
//! router (`app`) puts around them.

pub mod admin;
pub mod batch;
pub mod collectd;
pub mod command;
pub mod deadline;
pub mod exposition;
pub mod look;
pub mod metrics;
pub mod reply;
pub mod rest;
pub mod web;

use axum::Router;

use crate::app_state::AppState;

/// RestMQ's routes and the added ones (not the streams, which `transport` serves).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(rest::routes())
        .merge(command::routes())
        .merge(admin::routes())
        .merge(look::routes())
        .merge(collectd::routes())
        .merge(metrics::routes())
}
