//! The restmq browser client. `main` only mounts [`app::App`]; `app.rs` routes to the views.
//!
//! # Layout
//! - [`app`]: the root component, navigation and routing.
//! - [`route`]: hash routes (`#/stream/<queue>`, `#/dashboard`, `#/queue/<queue>`, `#/charts/<queue>`, `#/worker/<queue>?job=…`, `#/reduce/<queue>?job=…`).
//! - [`state`]: the pure logic (reducers, rates, filter, caps, series, map/reduce jobs), tested on the host.
//! - [`auth`]: the sign-in token of the tab; [`api`]: HTTP calls; [`stream`]: WebSocket / SSE / COMET subscriptions.
//! - [`sandbox`]: the Web Worker that runs a map/reduce job's user code, within a time budget.
//! - [`hooks`]: the IO the views use; [`views`]: one per route; [`components`]: presentation.

mod api;
mod app;
mod auth;
mod components;
mod hooks;
mod model;
mod route;
mod sandbox;
mod stream;
mod views;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
