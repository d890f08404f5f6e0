//! Command-line and environment configuration of the `restmq` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// RestMQ: the HTTP + WebSocket message queue.
#[derive(Debug, Parser)]
#[command(name = "restmq", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the queue server.
    Serve(ServeConfig),
    /// Relay data sources into a running server over HTTP (`SPEC` as for `serve --feed`).
    Feed(crate::feed::FeedConfig),
    #[command(flatten)]
    Client(crate::cli::ClientCommand),
}

/// Which store backend keeps the queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In process memory only: gone at exit.
    Memory,
    /// Durable in `--data-dir`.
    Embedded,
    /// A Redis server, with RestMQ's key layout.
    Redis,
}

/// What a queue at `--max-queue-len` does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overflow {
    /// Refuse it with 429.
    Reject,
    /// Drop the oldest messages to make room.
    DropOldest,
}

/// Settings of `restmq serve`.
#[derive(Debug, Clone, Parser)]
pub struct ServeConfig {
    /// A TOML file of these settings by their long names (`listen = "0.0.0.0:8888"`); the
    /// command line and the environment win over it. See `contrib/restmq.toml`.
    #[arg(long, env = "RESTMQ_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "RESTMQ_LISTEN", default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,

    /// Store backend.
    #[arg(long, env = "RESTMQ_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,

    /// Directory of the embedded store.
    #[arg(long, env = "RESTMQ_DATA_DIR", default_value = "./restmq-data")]
    pub data_dir: PathBuf,

    /// Redis URL for `--store redis`; with `--redis-cluster`, a comma-separated list of
    /// seed nodes.
    #[arg(long, env = "RESTMQ_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Talk to a Redis Cluster: each queue's keys share one hash slot (`{queue}` tags).
    #[arg(long, env = "RESTMQ_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Largest message accepted, in bytes; larger ones get 413.
    #[arg(long, env = "RESTMQ_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Directory of the built web app (Trunk's `dist/`), served at `/`.
    #[arg(long, env = "RESTMQ_WEB_DIR", default_value = "dist")]
    pub web_dir: PathBuf,

    /// Messages buffered per streaming consumer before it counts as slow.
    #[arg(long, env = "RESTMQ_CONSUMER_BUFFER", default_value_t = 256)]
    pub consumer_buffer: usize,

    /// Seconds a consumer's full buffer may stay full before it is disconnected.
    #[arg(long, env = "RESTMQ_SLOW_CONSUMER_SECS", default_value_t = 5)]
    pub slow_consumer_secs: u64,

    /// Deliveries of a leased message (reserve, `ack=1`) before it moves to `<queue>.dead`.
    #[arg(long, env = "RESTMQ_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u32,

    /// Lease of messages streamed to `ack=1` consumers, in seconds.
    #[arg(long, env = "RESTMQ_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,

    /// Broadcast messages kept per queue for `since` / `Last-Event-ID` replay (0 = none).
    #[arg(long, env = "RESTMQ_HISTORY_LEN", default_value_t = 1000)]
    pub history_len: usize,

    /// Seconds a broadcast message is kept for replay.
    #[arg(long, env = "RESTMQ_HISTORY_AGE_SECS", default_value_t = 300)]
    pub history_age_secs: u64,

    /// Seconds between the points of each queue's history (`/history/<q>`, an hour kept).
    #[arg(long, env = "RESTMQ_QUEUE_HISTORY_STEP_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub queue_history_step_secs: u64,

    /// Bytes of replay history kept per queue (its oldest messages go first).
    #[arg(long, env = "RESTMQ_HISTORY_QUEUE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub history_queue_bytes: usize,

    /// Bytes of replay history kept in all queues together (past it, the queues holding the
    /// most give up their oldest messages first).
    #[arg(long, env = "RESTMQ_HISTORY_TOTAL_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub history_total_bytes: usize,

    /// Most messages a queue holds (0 = no limit); see `--overflow`.
    #[arg(long, env = "RESTMQ_MAX_QUEUE_LEN", default_value_t = 0)]
    pub max_queue_len: u64,

    /// What a full queue does with a new message: refuse it (429) or drop its oldest.
    #[arg(long, env = "RESTMQ_OVERFLOW", value_enum, default_value_t = Overflow::Reject)]
    pub overflow: Overflow,

    /// Seconds a publish's `Idempotency-Key` is remembered.
    #[arg(long, env = "RESTMQ_IDEMPOTENCY_SECS", default_value_t = 300)]
    pub idempotency_secs: u64,

    /// Bytes of memory for remembered `Idempotency-Key` answers (embedded and memory stores);
    /// when full, a new key gets 429 until the oldest answers leave the window.
    #[arg(long, env = "RESTMQ_IDEMPOTENCY_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub idempotency_max_bytes: usize,

    /// Streaming connections (COMET, WebSocket, SSE) open at once; more get 429 (0 = no limit).
    #[arg(long, env = "RESTMQ_MAX_STREAMS", default_value_t = 0)]
    pub max_streams: usize,

    /// Seconds streams and connections get to close cleanly at shutdown; whatever is still
    /// open then is cut, so stopping never takes much longer than this.
    #[arg(long, env = "RESTMQ_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,

    /// Seconds a client has to send a request's headers, counted from its first byte (from
    /// connecting, for a connection's first request); a slower connection is closed.
    #[arg(long, env = "RESTMQ_HEADER_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub header_read_timeout_secs: u64,

    /// Seconds a keep-alive connection may wait, idle, for its next request before it is closed
    /// (streaming responses and WebSockets are never idle).
    #[arg(long, env = "RESTMQ_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds between heartbeats on idle streams (WebSocket pings, SSE comments, COMET empty
    /// lines), well under common proxy read timeouts; a WebSocket peer silent for two
    /// heartbeats is disconnected (0 = no heartbeats).
    #[arg(long, env = "RESTMQ_HEARTBEAT_SECS", default_value_t = 20)]
    pub heartbeat_secs: u64,

    /// Seconds a request's body may take to arrive once its headers have; a slower one is
    /// answered 408 and its connection closed.
    #[arg(long, env = "RESTMQ_BODY_READ_TIMEOUT_SECS", default_value_t = 60)]
    pub body_read_timeout_secs: u64,

    /// Connections open at once (0 = the open-file limit less a reserve of an eighth, at least
    /// 64). When full, or out of file descriptors, the connection that has waited longest for a
    /// request is closed to make room.
    #[arg(long, env = "RESTMQ_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// A data source to relay into a queue, e.g. `system` or `file:path=a.txt,queue=text,loop`;
    /// repeatable (in the environment, separate specs with `;`). Syntax in the README.
    #[arg(long = "feed", value_name = "SPEC", env = "RESTMQ_FEEDS", value_delimiter = ';')]
    pub feeds: Vec<crate::feed::FeedSpec>,

    /// Tokens, address lists, `acl.conf` and CORS (all off by default).
    #[command(flatten)]
    pub auth: Box<crate::auth::AuthConfig>,
}

impl ServeConfig {
    /// The defaults, as `restmq serve` with no flags (for tests and embedding).
    pub fn defaults() -> Self {
        Self::parse_from(["serve"])
    }
}
