//! Presence and node balancing (the scored-set pattern of the Redis Cookbook): each process
//! keeps a hash `restmq|node|<id>` with its address, load, consumers per queue, streaming
//! connections and per-queue counts (as JSON), expiring
//! within seconds unless refreshed, and its load as its score in the sorted set
//! `restmq|nodes`. Dead processes drop out when their hash expires.

use std::collections::BTreeMap;

use redis::AsyncCommands;

use super::conn::{error, Conn};
use super::keys::{node as node_key, NODES};
use crate::store::{NodePresence, StoreResult};

/// How long a process's presence outlives its last report, in seconds.
pub const PRESENCE_TTL_SECS: i64 = 5;

/// Publishes one process's presence.
pub async fn report(conn: &mut Conn, p: &NodePresence) -> StoreResult<()> {
    let key = node_key(&p.id);
    let consumers = serde_json::to_string(&p.consumers).unwrap_or_default();
    let fields = [
        ("addr", p.addr.clone()),
        ("load", p.load.to_string()),
        ("consumers", consumers),
        ("connections", serde_json::to_string(&p.connections).unwrap_or_default()),
        ("counters", serde_json::to_string(&p.counters).unwrap_or_default()),
    ];
    let () = conn.hset_multiple(&key, &fields).await.map_err(error)?;
    let () = conn.expire(&key, PRESENCE_TTL_SECS).await.map_err(error)?;
    let () = conn.zadd(NODES, &p.id, p.load).await.map_err(error)?;
    Ok(())
}

/// Removes a process's presence at shutdown.
pub async fn withdraw(conn: &mut Conn, id: &str) -> StoreResult<()> {
    let () = conn.del(node_key(id)).await.map_err(error)?;
    let () = conn.zrem(NODES, id).await.map_err(error)?;
    Ok(())
}

/// Every live process, least loaded first; expired ones are removed from the set.
pub async fn nodes(conn: &mut Conn) -> StoreResult<Vec<NodePresence>> {
    let ids: Vec<String> = conn.zrange(NODES, 0, -1).await.map_err(error)?;
    let mut live = Vec::with_capacity(ids.len());
    for id in ids {
        let fields: BTreeMap<String, String> = conn.hgetall(node_key(&id)).await.map_err(error)?;
        if fields.is_empty() {
            let () = conn.zrem(NODES, &id).await.map_err(error)?;
            continue;
        }
        live.push(NodePresence {
            addr: fields.get("addr").cloned().unwrap_or_default(),
            load: fields.get("load").and_then(|l| l.parse().ok()).unwrap_or(0),
            consumers: json_field(&fields, "consumers"),
            connections: json_field(&fields, "connections"),
            counters: json_field(&fields, "counters"),
            id,
            is_self: false,
        });
    }
    live.sort_by_key(|n| n.load);
    Ok(live)
}

/// A field of a presence hash holding JSON; empty when absent or unreadable (an older
/// process's report).
fn json_field<T: serde::de::DeserializeOwned + Default>(fields: &BTreeMap<String, String>, name: &str) -> T {
    fields.get(name).and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default()
}
