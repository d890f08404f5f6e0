//! restmq: RestMQ's HTTP + WebSocket message queue, on an embedded store or Redis.
//!
//! # Layout
//! - [`config`]: command line and environment.
//! - [`config_file`]: `serve --config FILE`, a TOML file of `serve` flags.
//! - [`auth`]: tokens, address lists, RestMQ's `acl.conf` and CORS (all off by default).
//! - [`telemetry`]: logging setup.
//! - [`shutdown`]: signals to a cancellation token.
//! - [`server`]: opening the store, serving, and stopping cleanly.
//! - [`connection`]: accepting and serving connections, with timeouts, a cap and a bounded shutdown.
//! - [`state`]: the handles every handler gets.
//! - [`error`]: the HTTP error type and its JSON body.
//! - [`store`]: the store interface and its backends.
//! - [`broker`]: queue semantics, streaming fan-out, policies and pause.
//! - [`http`]: RestMQ's routes, the JSON protocol and administration.
//! - [`metrics`]: store latency, connections and request counts, and the `/metrics` page.
//! - [`transport`]: COMET, WebSocket and SSE streaming.
//! - [`feed`]: data sources relayed into queues (system, url, file, syslog, collectd).
//! - [`cli`]: the client commands (`push`, `pop`, `tail`, `stats`, `policy`, `pause`, `resume`).

pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod error;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use server::run;
