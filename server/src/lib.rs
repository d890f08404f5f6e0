//! restmq: RestMQ's HTTP + WebSocket message queue, on an embedded store or Redis.
//!
//! # Layout
//! Dependencies point one way: entry (`server`, `app`, `connection`, `app_state`) → `http` /
//! `transport` (with `auth`, `extract`, `error`) → `broker` → `store`; `metrics` is a leaf.
//! See `docs/architecture.md`.
//!
//! - [`config`]: command line and environment.
//! - [`config_file`]: `serve --config FILE`, a TOML file of `serve` flags.
//! - [`auth`]: tokens, address lists, RestMQ's `acl.conf` and CORS (all off by default);
//!   the rules each route declares where it is registered.
//! - [`telemetry`]: logging setup.
//! - [`shutdown`]: signals to a cancellation token.
//! - [`server`]: opening the store, serving, and stopping cleanly.
//! - [`app`]: every route as one router, with the access checks and request layers.
//! - [`connection`]: accepting and serving connections, with timeouts, a cap and a bounded shutdown.
//! - [`app_state`]: `AppState`, the router's state: the handles every handler gets.
//! - [`error`]: the HTTP error type and its JSON body.
//! - [`extract`]: request arguments as RestMQ reads them, and the queue-name path extractor.
//! - [`store`]: the store interface and its backends.
//! - [`broker`]: queue semantics, streaming fan-out, policies and pause.
//! - [`http`]: RestMQ's routes, the JSON protocol, administration, looking without taking.
//! - [`metrics`]: store latency, connections and request counts (a leaf: every layer writes
//!   here; `http::exposition` renders the `/metrics` page).
//! - [`transport`]: COMET, WebSocket and SSE streaming, on one skeleton.
//! - [`feed`]: data sources relayed into queues (system, url, file, syslog, collectd).
//! - [`remote`]: the `--server` argument and reqwest errors, for the CLI and feeds.
//! - [`cli`]: the client commands (`push`, `pop`, `tail`, `stats`, `policy`, `pause`, `resume`).

pub mod app;
pub mod app_state;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod error;
pub mod extract;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod remote;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use server::run;
