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

/// A process that read a log this recently counts as reading it (each process with consumers
/// reads at least once a second).
pub const READING_MS: u64 = 5_000;

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

/// KEYS: log, readers. ARGV: cursor (empty: the log's end now), max, reader (this process),
/// now (Unix ms), [`READING_MS`]. Notes the reader as reading now, and returns `[others, cursor, n, value,
/// …]`: how many other processes read the log in the last [`READING_MS`], the new cursor,
/// then the entries after the old one.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
local others = redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[5]), '+inf') - 1
if ARGV[1] == '' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last == 0 then return {others, '0-0'} end
  return {others, last[1][1]}
end
local out = {others, ARGV[1]}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))) do
  out[2] = e[1]
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

/// What one read of a broadcast log found.
#[derive(Debug)]
pub struct FanoutRead {
    /// Where the next read starts.
    pub cursor: String,
    pub messages: Vec<StoredMessage>,
    /// Whether other processes read the log too (within [`READING_MS`]): their consumers get
    /// its entries from it.
    pub others_reading: bool,
}

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
    ) -> StoreResult<FanoutRead> {
        let keys = self.keys(queue);
        let mut invocation = READ.key(keys.fanout());
        invocation.key(keys.readers()).arg(cursor.unwrap_or_default()).arg(max);
        invocation.arg(&self.inner.node).arg(crate::store::clock::now_ms()).arg(READING_MS);
        let fields: Vec<redis::Value> = invocation.invoke_async(&mut self.conn()).await.map_err(error)?;
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v.clone()).ok();
        let (Some(others), Some(cursor)) = (fields.first(), fields.get(1).and_then(text)) else {
            return Err(crate::store::StoreError::Backend(
                "an empty answer from the broadcast log".to_owned(),
            ));
        };
        let others: i64 = redis::from_redis_value(others.clone()).unwrap_or(0);
        let messages = fields[2..]
            .chunks_exact(2)
            .filter_map(|e| {
                let n = text(&e[0])?.parse().ok()?;
                Some(StoredMessage { key: client_key(queue, n), value: text(&e[1])? })
            })
            .collect();
        Ok(FanoutRead { cursor, messages, others_reading: others > 0 })
    }
}
