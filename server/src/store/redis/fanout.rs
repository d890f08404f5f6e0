//! Broadcast on Redis: a queue's broadcast log, the stream `<q>:|fanout`. A process with
//! broadcast consumers moves the oldest messages from the list into the log in one script
//! (so a message is never in both, and never in neither), and every process with consumers
//! reads the log from its own cursor and hands each entry to its consumers. Nothing depends
//! on who hears a pub/sub message: the log is data, replicated and persisted like the list,
//! so a node failure or a restart loses no moved message and repeats none (each process's
//! cursor only moves forward). The bus only wakes the readers.
//!
//! The log keeps about [`LOG_LEN`] entries: a process further behind than that skips ahead.

use std::sync::LazyLock;

use redis::Script;
use restmq_shared::QueueName;

use super::conn::error;
use super::keys::{client_key, BUS};
use super::RedisStore;
use crate::store::{StoreResult, StoredMessage};

/// Entries kept in a broadcast log (approximately: Redis trims whole nodes).
pub const LOG_LEN: u64 = 10_000;

/// KEYS: list, log. ARGV: max, bus, queue, log length. Moves up to max of the oldest live
/// messages into the log, oldest first, dropping their keys; returns their numbers.
static MOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local moved = {}
local max = tonumber(ARGV[1])
while #moved < max do
  local key = redis.call('RPOP', KEYS[1])
  if not key then break end
  local v = redis.call('GET', key)
  if v then
    local n = string.match(key, ':(%d+)$')
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'n', n, 'v', v)
    moved[#moved + 1] = tonumber(n)
  end
  redis.call('DEL', key, key .. ':refcount', key .. '|deliveries')
end
if #moved > 0 then redis.call('PUBLISH', ARGV[2], 'a ' .. ARGV[3]) end
return moved
",
    )
});

/// KEYS: log. ARGV: cursor (empty: the log's end now), max. Returns `[cursor, n, value, …]`:
/// the new cursor, then the entries after the old one.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[1] == '' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last == 0 then return {'0-0'} end
  return {last[1][1]}
end
local out = {ARGV[1]}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))) do
  out[1] = e[1]
  local f = e[2]
  local n, v = '0', ''
  for i = 1, #f, 2 do
    if f[i] == 'n' then n = f[i + 1] elseif f[i] == 'v' then v = f[i + 1] end
  end
  out[#out + 1] = n
  out[#out + 1] = v
end
return out
",
    )
});

impl RedisStore {
    pub(super) async fn move_to_log(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<u64>> {
        let keys = self.keys(queue);
        MOVE.key(keys.list())
            .key(keys.fanout())
            .arg(max)
            .arg(BUS)
            .arg(queue.as_str())
            .arg(LOG_LEN)
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)
    }

    pub(super) async fn read_log(
        &self,
        queue: &QueueName,
        cursor: Option<&str>,
        max: usize,
    ) -> StoreResult<(String, Vec<StoredMessage>)> {
        let mut fields: Vec<String> = READ
            .key(self.keys(queue).fanout())
            .arg(cursor.unwrap_or_default())
            .arg(max)
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        if fields.is_empty() {
            return Err(crate::store::StoreError::Backend(
                "an empty answer from the broadcast log".to_owned(),
            ));
        }
        let rest = fields.split_off(1);
        let messages = rest
            .chunks_exact(2)
            .filter_map(|e| {
                Some(StoredMessage { key: client_key(queue, e[0].parse().ok()?), value: e[1].clone() })
            })
            .collect();
        Ok((fields.remove(0), messages))
    }
}
