//! The Lua scripts that make each store operation one atomic step. Loaded once, called by
//! SHA (`EVALSHA`, reloaded on `NOSCRIPT`).
//!
//! Conventions: the queue's own keys come first in `KEYS`; `QUEUESET` is the last key only
//! outside cluster mode (in a cluster it lives in another slot and is written separately).
//! Every change is announced on the bus channel: `a <q>` added, `s <q>` settings,
//! `p <q>` purged, `m <origin> <q> <n> <value>` a broadcast message.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: counter, list, [QUEUESET]. ARGV: queue, value, ttl seconds (0 = none),
/// message-key prefix, bus. Returns the new `n`.
pub static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
local key = ARGV[4] .. n
if ARGV[3] ~= '0' then
  redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', key, ARGV[2])
end
redis.call('LPUSH', KEYS[2], key)
if KEYS[3] then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('PUBLISH', ARGV[5], 'a ' .. ARGV[1])
return n
",
    )
});

/// KEYS: list. ARGV: max. Pops up to `max` live messages, oldest first, removing value and
/// soft-read count; expired entries are dropped on the way. Returns
/// `[entries_popped, key1, value1, key2, value2, …]`.
pub static POP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {0}
local found = 0
local max = tonumber(ARGV[1])
while found < max do
  local key = redis.call('RPOP', KEYS[1])
  if not key then break end
  out[1] = out[1] + 1
  local v = redis.call('GET', key)
  redis.call('DEL', key, key .. ':refcount')
  if v then
    table.insert(out, key)
    table.insert(out, v)
    found = found + 1
  end
end
return out
",
    )
});

/// KEYS: list. ARGV: max, bus, origin, queue. Like [`POP`], but publishes each message on
/// the bus instead of returning it, so every process delivers it to its consumers in the
/// same order. A message nobody is subscribed to hear stays in the queue. Returns
/// `[entries_popped, published]`.
pub static POP_BROADCAST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local popped, published = 0, 0
local max = tonumber(ARGV[1])
while published < max do
  local key = redis.call('RPOP', KEYS[1])
  if not key then break end
  local v = redis.call('GET', key)
  if v then
    local n = string.match(key, ':(%d+)$')
    local heard = redis.call('PUBLISH', ARGV[2], 'm ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. n .. ' ' .. v)
    if heard == 0 then
      redis.call('RPUSH', KEYS[1], key)
      break
    end
    published = published + 1
  end
  popped = popped + 1
  redis.call('DEL', key, key .. ':refcount')
end
return {popped, published}
",
    )
});

/// KEYS: list. Counts a soft read of the oldest live message; drops expired entries met on
/// the way. Returns `[key, value, count]` or nil.
pub static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
while true do
  local key = redis.call('LINDEX', KEYS[1], -1)
  if not key then return nil end
  local v = redis.call('GET', key)
  if v then
    local count = redis.call('INCR', key .. ':refcount')
    return {key, v, count}
  end
  redis.call('RPOP', KEYS[1])
end
",
    )
});

/// KEYS: list. ARGV: message key. Returns 1 when the message was there.
pub static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local listed = redis.call('LREM', KEYS[1], 0, ARGV[1])
local existed = redis.call('DEL', ARGV[1], ARGV[1] .. ':refcount')
if listed > 0 or existed > 0 then return 1 end
return 0
",
    )
});

/// KEYS: list, [QUEUESET]. ARGV: queue, bus, then key/value pairs newest first. Puts the
/// messages back at the head (the RPOP end), oldest outermost.
pub static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 3, #ARGV, 2 do
  redis.call('SET', ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], 'a ' .. ARGV[1])
return 1
",
    )
});

/// KEYS: list, counter, policy, status, [QUEUESET]. ARGV: queue, bus. Removes every key of
/// the queue. Returns 1 when anything existed.
pub static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local keys = redis.call('LRANGE', KEYS[1], 0, -1)
for _, k in ipairs(keys) do redis.call('DEL', k, k .. ':refcount') end
local existed = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if KEYS[5] then existed = existed + redis.call('SREM', KEYS[5], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], 'p ' .. ARGV[1])
if existed > 0 then return 1 end
return 0
",
    )
});

/// KEYS: setting key, [QUEUESET]. ARGV: value, queue, bus. Sets a policy or status.
pub static SETTING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1])
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], 's ' .. ARGV[2])
return 1
",
    )
});
