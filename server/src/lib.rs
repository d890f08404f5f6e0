//! restmq: RestMQ's HTTP + WebSocket message queue, on an embedded store or Redis.
//!
//! # Layout
//! - [`store`]: the store interface and its backends.
pub mod store;
