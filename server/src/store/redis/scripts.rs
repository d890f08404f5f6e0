//! The Lua scripts that make each store operation one atomic step. Loaded once, called by
//! SHA (`EVALSHA`, reloaded on `NOSCRIPT`).
//!
//! Conventions: the queue's own keys come first in `KEYS`; `QUEUESET` is the last key only
//! outside cluster mode (in a cluster it lives in another slot and is written separately).
//! Every change is announced on the bus channel: `a <q>` added, `s <q>` settings,
//! `p <q>` purged, `m <origin> <q> <n> <value>` a broadcast message.

use std::sync::LazyLock;

use redis::Script;

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
local existed = redis.call('DEL', ARGV[1], ARGV[1] .. ':refcount', ARGV[1] .. '|deliveries')
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

/// KEYS: list, leased, delayed, ttl index, broadcast log, its readers. ARGV: queue, bus. Removes every message of the
/// queue with all its keys, leased and delayed ones included; the counter, policy, status and
/// `QUEUESET` entry stay, as in RestMQ (keys are never reused, a paused queue stays paused).
/// Returns 1 when it held any message.
pub static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local keys = redis.call('LRANGE', KEYS[1], 0, -1)
for _, k in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do table.insert(keys, k) end
for _, k in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do table.insert(keys, k) end
for _, k in ipairs(keys) do redis.call('DEL', k, k .. ':refcount', k .. '|deliveries') end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('PUBLISH', ARGV[2], 'p ' .. ARGV[1])
if #keys > 0 then return 1 end
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

/// KEYS: list, leased (sorted set), [QUEUESET unused]. ARGV: max, deadline (ms), lease set
/// name, queue. Moves up to `max` live messages from the head of the list to the leased
/// set, counting deliveries. Returns `[key1, value1, deliveries1, …]`.
pub static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
local found = 0
local max = tonumber(ARGV[1])
while found < max do
  local key = redis.call('RPOP', KEYS[1])
  if not key then break end
  local v = redis.call('GET', key)
  if v then
    redis.call('ZADD', KEYS[2], ARGV[2], key)
    local d = redis.call('INCR', key .. '|deliveries')
    table.insert(out, key)
    table.insert(out, v)
    table.insert(out, tostring(d))
    found = found + 1
  else
    redis.call('DEL', key .. ':refcount', key .. '|deliveries')
  end
end
return out
",
    )
});

/// KEYS: leased. ARGV: message key. Acknowledges: the message is gone. Returns 1 if leased.
pub static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', ARGV[1], ARGV[1] .. ':refcount', ARGV[1] .. '|deliveries')
return 1
",
    )
});

/// KEYS: leased, list. ARGV: queue, bus, then message keys newest first. Gives the leased
/// ones back to the head, the oldest outermost. Returns how many were leased.
pub static NACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local back = 0
for i = 3, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    back = back + 1
  end
end
if back > 0 then redis.call('PUBLISH', ARGV[2], 'a ' .. ARGV[1]) end
return back
",
    )
});

/// KEYS: leased, list, dead counter, dead list. ARGV: now (ms), max deliveries, queue, bus,
/// dead message-key prefix, dead queue. Ends due leases: back to the head, or to the
/// dead-letter queue once delivered `max` times (announced to its observers, as an add).
/// Returns `[returned, dead]`.
pub static EXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local back, dead = 0, 0
local returned = {}
local observed = redis.call('EXISTS', ARGV[5] .. '|observed') == 1
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[1], key)
  local d = tonumber(redis.call('GET', key .. '|deliveries') or '0')
  local v = redis.call('GET', key)
  if v and d >= tonumber(ARGV[2]) then
    local n = redis.call('INCR', KEYS[3])
    redis.call('SET', ARGV[5] .. n, v)
    redis.call('LPUSH', KEYS[4], ARGV[5] .. n)
    redis.call('DEL', key, key .. ':refcount', key .. '|deliveries')
    if observed then redis.call('PUBLISH', ARGV[4], 'o ' .. ARGV[6] .. ' ' .. n .. ' ' .. v) end
    dead = dead + 1
  elseif v then
    returned[#returned + 1] = key
    back = back + 1
  end
end
-- Back at the head in key order: the lowest number is pushed last, so it is next out.
table.sort(returned, function(a, b)
  return tonumber(string.match(a, '(%d+)$')) > tonumber(string.match(b, '(%d+)$'))
end)
for _, key in ipairs(returned) do redis.call('RPUSH', KEYS[2], key) end
if back > 0 then redis.call('PUBLISH', ARGV[4], 'a ' .. ARGV[3]) end
if dead > 0 then redis.call('PUBLISH', ARGV[4], 'a ' .. ARGV[6]) end
return {back, dead}
",
    )
});

/// KEYS: from list, to counter, to list. ARGV: to message-key prefix, to queue, bus, max length
/// (0 = none), to delayed set. Moves the messages of one queue to the end of another as new
/// messages, oldest first, as many as the other's max length has room for (waiting and delayed
/// messages count), each announced to the other's observers as an add. Returns how many.
pub static REDRIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local moved = 0
local observed = redis.call('EXISTS', ARGV[1] .. '|observed') == 1
local room = -1
if tonumber(ARGV[4]) > 0 then
  room = tonumber(ARGV[4]) - redis.call('LLEN', KEYS[3]) - redis.call('ZCARD', ARGV[5])
end
while room < 0 or moved < room do
  local key = redis.call('RPOP', KEYS[1])
  if not key then break end
  local v = redis.call('GET', key)
  redis.call('DEL', key, key .. ':refcount', key .. '|deliveries')
  if v then
    local n = redis.call('INCR', KEYS[2])
    redis.call('SET', ARGV[1] .. n, v)
    redis.call('LPUSH', KEYS[3], ARGV[1] .. n)
    if observed then redis.call('PUBLISH', ARGV[3], 'o ' .. ARGV[2] .. ' ' .. n .. ' ' .. v) end
    moved = moved + 1
  end
end
if moved > 0 then redis.call('PUBLISH', ARGV[3], 'a ' .. ARGV[2]) end
return moved
",
    )
});

/// KEYS: counter, list, status, ttl index, [idempotency record, with a claim], [QUEUESET].
/// ARGV: queue, ttl seconds (0 = none), message-key prefix, bus, max length (0 = none), drop
/// oldest (`1`/`0`), claim token (empty for none), answer window seconds, client key prefix,
/// expiry (Unix ms, with a ttl), then the values. Messages with a ttl are indexed for the sweep
/// in the same step. On a queue marked observed (`<q>:|observed`) each is announced on the bus. Adds all values or none; returns the first new `n`, -1 when the queue is full, or
/// -2 when the idempotency record no longer holds the claim (then nothing is added; with it,
/// the record becomes the list of client keys, in the same step as the add). A queue's first
/// message marks it started unless a status was set before, as RestMQ's `queue_add` did (a
/// RestMQ process sharing the Redis never dispatches a queue without it).
pub static ADD_BATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = #ARGV - 10
local idem, queueset = nil, KEYS[5]
if ARGV[7] ~= '' then idem, queueset = KEYS[5], KEYS[6] end
if idem and redis.call('GET', idem) ~= '|pending|' .. ARGV[7] then return -2 end
local max = tonumber(ARGV[5])
if max > 0 then
  local over = redis.call('LLEN', KEYS[2]) + count - max
  if over > 0 then
    if ARGV[6] ~= '1' or count > max then return -1 end
    for _ = 1, over do
      local k = redis.call('RPOP', KEYS[2])
      if k then redis.call('DEL', k, k .. ':refcount', k .. '|deliveries') end
    end
  end
end
local first = redis.call('INCRBY', KEYS[1], count) - count + 1
if first == 1 then redis.call('SET', KEYS[3], '1', 'NX') end
-- In chunks, so that each MSET/LPUSH stays well within Lua's stack.
for from = 0, count - 1, 500 do
  local to = math.min(from + 500, count) - 1
  local listed, pairs = {}, {}
  for i = from, to do
    local key = ARGV[3] .. (first + i)
    listed[#listed + 1] = key
    if ARGV[2] ~= '0' then
      redis.call('SET', key, ARGV[11 + i], 'EX', ARGV[2])
      redis.call('ZADD', KEYS[4], ARGV[10], key)
    else
      pairs[#pairs + 1] = key
      pairs[#pairs + 1] = ARGV[11 + i]
    end
  end
  if #pairs > 0 then redis.call('MSET', unpack(pairs)) end
  redis.call('LPUSH', KEYS[2], unpack(listed))
end
if idem then
  local answer = {}
  for i = 0, count - 1 do answer[#answer + 1] = ARGV[9] .. (first + i) end
  redis.call('SET', idem, table.concat(answer, ','), 'EX', ARGV[8])
end
if queueset then redis.call('SADD', queueset, ARGV[1]) end
redis.call('PUBLISH', ARGV[4], 'a ' .. ARGV[1])
if redis.call('EXISTS', ARGV[3] .. '|observed') == 1 then
  for i = 0, count - 1 do redis.call('PUBLISH', ARGV[4], 'o ' .. ARGV[1] .. ' ' .. (first + i) .. ' ' .. ARGV[11 + i]) end
end
return first
",
    )
});

/// KEYS: counter, delayed, status, ttl index, [idempotency record, with a claim], [QUEUESET].
/// ARGV: queue, value, ttl seconds (0 = none), message-key prefix, visible-at (Unix ms), claim
/// token (empty for none), answer window seconds, client key prefix, expiry (Unix ms, with a
/// ttl), max length (0 = none), list, bus. A queue at its max length (waiting and delayed messages
/// count) refuses it: -1. Adds a message hidden until
/// visible-at; returns its `n`, or -2 when the claim is lost, as in [`ADD_BATCH`]; a first
/// message marks the queue started, as there.
pub static ADD_DELAYED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local idem, queueset = nil, KEYS[5]
if ARGV[6] ~= '' then idem, queueset = KEYS[5], KEYS[6] end
if idem and redis.call('GET', idem) ~= '|pending|' .. ARGV[6] then return -2 end
local max = tonumber(ARGV[10])
if max > 0 and redis.call('LLEN', ARGV[11]) + redis.call('ZCARD', KEYS[2]) >= max then return -1 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('SET', KEYS[3], '1', 'NX') end
local key = ARGV[4] .. n
if ARGV[3] ~= '0' then
  redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[9], key)
else
  redis.call('SET', key, ARGV[2])
end
redis.call('ZADD', KEYS[2], ARGV[5], key)
if idem then redis.call('SET', idem, ARGV[8] .. n, 'EX', ARGV[7]) end
if queueset then redis.call('SADD', queueset, ARGV[1]) end
if redis.call('EXISTS', ARGV[4] .. '|observed') == 1 then
  redis.call('PUBLISH', ARGV[12], 'o ' .. ARGV[1] .. ' ' .. n .. ' ' .. ARGV[2])
end
return n
",
    )
});

/// KEYS: delayed, list. ARGV: now (Unix ms), queue, bus. Moves due delayed messages to the
/// newest end of the list. Returns how many.
pub static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local moved = 0
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[1], key)
  if redis.call('EXISTS', key) == 1 then
    redis.call('LPUSH', KEYS[2], key)
    moved = moved + 1
  end
end
if moved > 0 then redis.call('PUBLISH', ARGV[3], 'a ' .. ARGV[2]) end
return moved
",
    )
});

/// KEYS: expiring (sorted set), list. ARGV: now (Unix ms). Removes the list entries of
/// messages whose value expired, so none stays counted; an entry due by its score whose value
/// Redis has not expired yet is scored again by the value's own time left (one that lost its
/// ttl is dropped from the index). Returns how many were removed.
pub static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local swept = 0
for _, key in ipairs(due) do
  local left = redis.call('PTTL', key)
  if left == -2 then
    redis.call('ZREM', KEYS[1], key)
    swept = swept + redis.call('LREM', KEYS[2], 1, key)
    redis.call('DEL', key .. ':refcount', key .. '|deliveries')
  elseif left == -1 then
    redis.call('ZREM', KEYS[1], key)
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + left, key)
  end
end
return swept
",
    )
});
