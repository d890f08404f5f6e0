//! restmq-bench: restmq measured side by side with nchan, the durable queues NATS JetStream and
//! beanstalkd, and the axum/Redis ceilings.
//!
//! # Layout
//! - [`target`]: the server under test, its routes, and the stamped payloads.
//! - [`client`]: keep-alive HTTP connections and WebSocket consumers.
//! - [`measure`]: latency histograms, samples, CPU time and RSS from `/proc`.
//! - [`http_load`]: the `publish` and `pop` scenarios.
//! - [`stream`]: the `e2e`, `fanout` and `idle` scenarios.
//! - [`jetstream`], [`beanstalk`]: `publish` and `pop` against the durable peers of the
//!   embedded store (NATS JetStream on files; beanstalkd with its binlog, and its client).
//! - [`backlog`]: the embedded store's 1,000,000-message backlog: RSS, restart, drain.
//! - [`servers`]: starting restmq, nginx + nchan, the durable peers, the ceiling and Redis, pinned.
//! - [`suite`]: every server, every scenario, several runs.
//! - [`report`]: the text of BENCHMARKS.md; [`stores`]: its section comparing the stores;
//!   [`durable`]: its section setting the embedded store beside the durable peers.
//! - [`plot`]: the SVG plots.

pub mod backlog;
pub mod beanstalk;
pub mod client;
pub mod durable;
pub mod http_load;
pub mod jetstream;
pub mod measure;
pub mod plot;
pub mod report;
pub mod servers;
pub mod stores;
pub mod stream;
pub mod suite;
pub mod target;
