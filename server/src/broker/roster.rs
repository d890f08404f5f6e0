//! Who streams from each queue: one entry per streaming connection, consumer or observer,
//! with its transport, client address, start and messages written; `/consumers/<q>` lists
//! them, on a shared store for every process (each reports its own with its presence).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use restmq_shared::{ConsumerInfo, ConsumersReply, QueueName};

use super::{Broker, BrokerResult};

/// The most connections of one process a presence report lists (the rest are counted only).
pub const MAX_REPORTED: usize = 1000;

/// What a transport says of a streaming connection when it starts.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Whether it observes (takes nothing) rather than consumes.
    pub observer: bool,
    /// `ws`, `sse` or `comet`.
    pub transport: &'static str,
    pub addr: String,
    /// Whether it acknowledges each message (`ack=1`).
    pub ack: bool,
}

/// One listed connection.
struct Listed {
    info: StreamInfo,
    since: u64,
    delivered: AtomicU64,
}

impl Listed {
    /// The connection as the consumers list shows it.
    fn describe(&self, node: &str) -> ConsumerInfo {
        let StreamInfo { observer, transport, ref addr, ack } = self.info;
        ConsumerInfo {
            mode: if observer { "observer" } else { "consumer" }.to_owned(),
            transport: transport.to_owned(),
            addr: addr.clone(),
            since: self.since,
            delivered: self.delivered.load(Ordering::Relaxed),
            ack,
            node: node.to_owned(),
        }
    }
}

/// The streaming connections of one queue in this process.
#[derive(Default)]
pub(super) struct Roster {
    next_id: AtomicU64,
    listed: Mutex<BTreeMap<u64, Arc<Listed>>>,
}

impl Roster {
    fn entries(&self) -> Vec<Arc<Listed>> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

/// A connection's place in its queue's roster; dropping it (the connection ends) removes it.
pub struct Enlisted {
    roster: Arc<Roster>,
    id: u64,
    listed: Arc<Listed>,
}

impl Drop for Enlisted {
    fn drop(&mut self) {
        self.roster.listed.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl Enlisted {
    /// Lists a streaming connection of a queue in its `roster` until the guard drops.
    pub(super) fn new(roster: Arc<Roster>, info: StreamInfo) -> Self {
        let id = roster.next_id.fetch_add(1, Ordering::Relaxed);
        let listed = Arc::new(Listed { info, since: unix_secs(), delivered: AtomicU64::new(0) });
        roster.listed.lock().unwrap_or_else(|p| p.into_inner()).insert(id, listed.clone());
        Self { roster, id, listed }
    }

    /// Counts messages handed to the connection.
    pub(super) fn handed(&self, count: usize) {
        self.listed.delivered.fetch_add(count as u64, Ordering::Relaxed);
    }
}

impl Broker {
    /// This process's streaming connections of `queue`, every one.
    fn connections_of(&self, queue: &QueueName) -> Vec<ConsumerInfo> {
        let Some(hub) = self.existing_hub(queue) else { return Vec::new() };
        let node = self.config().node_addr.clone();
        hub.roster.entries().iter().map(|listed| listed.describe(&node)).collect()
    }

    /// This process's streaming connections, on every queue (at most [`MAX_REPORTED`]), for
    /// its presence report.
    pub(super) fn local_connections(&self) -> Vec<(QueueName, ConsumerInfo)> {
        let node = self.config().node_addr.clone();
        let mut all = Vec::new();
        for hub in self.all_hubs() {
            for listed in hub.roster.entries() {
                if all.len() == MAX_REPORTED {
                    return all;
                }
                all.push((hub.queue.clone(), listed.describe(&node)));
            }
        }
        all
    }

    /// Who streams from `queue`: here, and on a shared store in every other process too.
    pub async fn consumers_of(&self, queue: &QueueName) -> BrokerResult<ConsumersReply> {
        let mut consumers = self.connections_of(queue);
        for node in self.other_nodes().await? {
            consumers
                .extend(node.connections.into_iter().filter(|(q, _)| q == queue.as_str()).map(|(_, c)| c));
        }
        consumers.sort_by(|a, b| (a.since, &a.node, &a.addr).cmp(&(b.since, &b.node, &b.addr)));
        Ok(ConsumersReply { queue: queue.clone(), consumers })
    }
}

/// Seconds since the Unix epoch.
pub(super) fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
