//! How a broker behaves: consumer buffers, batches, leases, replay history and limits.

use std::time::Duration;

/// Tuning of streaming delivery, and the limits of what is accepted.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Messages buffered per streaming consumer before it counts as slow.
    pub consumer_buffer: usize,
    /// How long a consumer's full buffer may stay full before it is disconnected.
    pub slow_consumer_timeout: Duration,
    /// The most messages popped from the store in one step.
    pub batch: usize,
    /// The address this process serves on, as `/nodes` shows it.
    pub node_addr: String,
    /// Deliveries of a leased message before it moves to `<queue>.dead`.
    pub max_deliveries: u32,
    /// The lease of messages streamed to `ack=1` consumers.
    pub lease: Duration,
    /// Broadcast messages kept per queue for `since` replay (0 = none).
    pub history_len: usize,
    /// How long a broadcast message is kept for replay.
    pub history_age: Duration,
    /// Bytes of replay history kept per queue.
    pub history_queue_bytes: usize,
    /// Bytes of replay history kept in all queues together.
    pub history_total_bytes: usize,
    /// Per-queue length limit, if any.
    pub length_limit: Option<crate::store::LengthLimit>,
    /// How long a publish's `Idempotency-Key` is remembered.
    pub idempotency_window: Duration,
    /// Bytes of memory for idempotency answers on a process-local store; when full, new keys
    /// are refused until the oldest answers leave the window.
    pub idempotency_max_bytes: usize,
    /// The largest message accepted, in bytes (the HTTP routes answer 413 beyond it; feeds
    /// skip such messages).
    pub max_message_bytes: usize,
    /// The step of each queue's history (`/history/<q>`): one point per step, an hour kept.
    pub timeline_step: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            consumer_buffer: 256,
            slow_consumer_timeout: Duration::from_secs(5),
            batch: 64,
            node_addr: String::new(),
            max_deliveries: 5,
            lease: Duration::from_secs(30),
            history_len: 1000,
            history_age: Duration::from_secs(300),
            history_queue_bytes: 8 * 1024 * 1024,
            history_total_bytes: 64 * 1024 * 1024,
            length_limit: None,
            idempotency_window: Duration::from_secs(300),
            idempotency_max_bytes: 64 * 1024 * 1024,
            max_message_bytes: 1024 * 1024,
            timeline_step: Duration::from_secs(10),
        }
    }
}
