//! Browsing on Redis: a page of a queue's waiting messages in list order (the order they
//! will be handed out), or of its leased ones, read in one script that changes nothing.
//!
//! The page after a key starts just past that key's place in the list, the order messages
//! are handed out in (found from the oldest end, so a page costs about how deep into the
//! queue it is, in C, plus what it returns); when the key has left the list, past the first
//! entry numbered above it, by a binary search.

use std::sync::LazyLock;

use redis::Script;
use restmq_shared::{BrowsedMessage, QueueName};

use super::conn::error;
use super::keys::{client_key, number};
use super::RedisStore;
use crate::store::clock::now_ms;
use crate::store::{Page, StoreResult};

/// KEYS: list. ARGV: after n (0 for none), max, message-key prefix. Returns
/// `[key, value, reads, pttl, …]` of up to max waiting messages, oldest first.
static BROWSE_WAITING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local list, after, max = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local len = redis.call('LLEN', list)
local function n_of(k) return tonumber(string.match(k, '(%d+)$')) or 0 end
-- d: how far from the oldest end the page starts: just past the after key's place in the
-- list (LPOS from the oldest end, so the cost grows with how deep the page is); when that key
-- has left the list, past the first entry numbered above it, found by a binary search (the
-- list is in number order but for messages put back or promoted late).
local d = 0
if after > 0 then
  local p = redis.call('LPOS', list, ARGV[3] .. after, 'RANK', -1)
  if p then
    d = len - p
  else
    local lo, hi = 0, len
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if n_of(redis.call('LINDEX', list, -(mid + 1))) > after then hi = mid else lo = mid + 1 end
    end
    d = lo
  end
end
local out = {}
while d < len and #out < max * 4 do
  local chunk = redis.call('LRANGE', list, -(d + max), -(d + 1))
  if #chunk == 0 then break end
  for j = #chunk, 1, -1 do
    local k = chunk[j]
    local v = redis.call('GET', k)
    if v and #out < max * 4 then
      out[#out + 1] = k
      out[#out + 1] = v
      out[#out + 1] = tonumber(redis.call('GET', k .. ':refcount') or '0')
      out[#out + 1] = redis.call('PTTL', k)
    end
  end
  d = d + #chunk
end
return out
",
    )
});

/// KEYS: leased. ARGV: after n, max. Returns `[key, value, reads, pttl, deadline,
/// deliveries, …]` of up to max leased messages numbered above after, in key order.
static BROWSE_LEASED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local after, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local function n_of(k) return tonumber(string.match(k, '(%d+)$')) or 0 end
local found = {}
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  if n_of(all[i]) > after then found[#found + 1] = {all[i], all[i + 1]} end
end
table.sort(found, function(a, b) return n_of(a[1]) < n_of(b[1]) end)
local out = {}
for _, e in ipairs(found) do
  if #out >= max * 6 then break end
  local k = e[1]
  local v = redis.call('GET', k)
  if v then
    out[#out + 1] = k
    out[#out + 1] = v
    out[#out + 1] = tonumber(redis.call('GET', k .. ':refcount') or '0')
    out[#out + 1] = redis.call('PTTL', k)
    out[#out + 1] = e[2]
    out[#out + 1] = tonumber(redis.call('GET', k .. '|deliveries') or '0')
  end
end
return out
",
    )
});

/// One field of a script's reply.
type Field = redis::Value;

impl RedisStore {
    pub(super) async fn browse_page(
        &self,
        queue: &QueueName,
        page: Page,
    ) -> StoreResult<Vec<BrowsedMessage>> {
        let Page { after, limit, leased } = page;
        let keys = self.keys(queue);
        let fields: Vec<Field> = if leased {
            BROWSE_LEASED.key(keys.leased()).arg(after).arg(limit).invoke_async(&mut self.conn()).await
        } else {
            let mut invocation = BROWSE_WAITING.key(keys.list());
            invocation.arg(after).arg(limit).arg(keys.message_prefix());
            invocation.invoke_async(&mut self.conn()).await
        }
        .map_err(error)?;
        let now = now_ms();
        let width = if leased { 6 } else { 4 };
        Ok(fields
            .chunks_exact(width)
            .filter_map(|f| {
                let n = number(&text(&f[0])?)?;
                let pttl = int(&f[3]);
                let deadline = leased.then(|| text(&f[4]).and_then(|s| s.parse::<f64>().ok())).flatten();
                Some(BrowsedMessage {
                    key: client_key(queue, n),
                    value: text(&f[1])?,
                    count: u64::try_from(int(&f[2])).unwrap_or(0),
                    expires: (pttl > 0).then(|| now + pttl.unsigned_abs()),
                    deadline: deadline.map(|d| d as u64),
                    deliveries: leased.then(|| u32::try_from(int(&f[5])).unwrap_or(0)),
                })
            })
            .take(limit)
            .collect())
    }
}

fn text(v: &Field) -> Option<String> {
    redis::from_redis_value(v.clone()).ok()
}

fn int(v: &Field) -> i64 {
    redis::from_redis_value(v.clone()).unwrap_or(0)
}
