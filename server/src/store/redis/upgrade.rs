//! Moves the keys an earlier restmq added under names a queue could also produce
//! (`restmq:leased`, `<q>:leased`, `<q>:<n>:deliveries`, …) to the namespace of [`super::keys`],
//! once, at start. RestMQ's own keys are never touched. Idempotency records (they expire within
//! the window) and presence (within seconds) are left to expire.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use restmq_shared::QueueName;

use super::conn::{error, Conn};
use super::keys::{QueueKeys, DELAYED_QUEUES, LEASED_QUEUES, TTL_QUEUES};
use crate::store::StoreResult;

/// KEYS: old sorted set, new sorted set, list. ARGV: `1` to move delivery counts too. Merges the
/// old set into the new one (a member in both keeps the later score) and, for leases, moves
/// `<k>:deliveries` to `<k>|deliveries` for every leased or listed message. Returns 1 when
/// there was an old set.
static MOVE_QUEUE_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return 0 end
if ARGV[1] == '1' then
  local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
  for _, k in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do table.insert(keys, k) end
  for _, k in ipairs(keys) do
    local old = k .. ':deliveries'
    if redis.call('TYPE', old).ok == 'string' then
      redis.call('SET', k .. '|deliveries', redis.call('GET', old))
      redis.call('DEL', old)
    end
  end
end
redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MAX')
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// The sets of queues the passes visit: (old name, new name, the per-queue word, leases).
const QUEUE_SETS: [(&str, &str, &str, bool); 3] = [
    ("restmq:leased", LEASED_QUEUES, "leased", true),
    ("restmq:delayed", DELAYED_QUEUES, "delayed", false),
    ("restmq:ttl", TTL_QUEUES, "ttl", false),
];

/// Moves every key of the earlier layout still in Redis; a no-op once done.
pub async fn move_legacy_keys(conn: &mut Conn, cluster: bool) -> StoreResult<()> {
    for (old_set, new_set, word, leases) in QUEUE_SETS {
        if key_type(conn, old_set).await? != "set" {
            continue;
        }
        let names: Vec<String> = conn.smembers(old_set).await.map_err(error)?;
        for queue in names.into_iter().filter_map(|n| QueueName::try_from(n).ok()) {
            let keys = QueueKeys::new(&queue, cluster);
            let new_key = match word {
                "leased" => keys.leased(),
                "delayed" => keys.delayed(),
                _ => keys.expiring(),
            };
            let moved: i64 = MOVE_QUEUE_SET
                .key(format!("{}{word}", keys.message_prefix()))
                .key(new_key)
                .key(keys.list())
                .arg(if leases { "1" } else { "0" })
                .invoke_async(conn)
                .await
                .map_err(error)?;
            if moved == 1 {
                let () = conn.sadd(new_set, queue.as_str()).await.map_err(error)?;
            }
        }
        let () = conn.del(old_set).await.map_err(error)?;
        tracing::info!(from = old_set, to = new_set, "moved keys of the earlier layout");
    }
    if key_type(conn, "restmq:nodes").await? == "zset" {
        let () = conn.del("restmq:nodes").await.map_err(error)?;
    }
    Ok(())
}

async fn key_type(conn: &mut Conn, key: &str) -> StoreResult<String> {
    redis::cmd("TYPE").arg(key).query_async(conn).await.map_err(error)
}
