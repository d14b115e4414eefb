"""The Lua scripts that keep the shared ledger: each runs atomically in Redis, so checks and takes by many
replicas never interleave.

Keys of one API key share the prefix ``tm:{<key id>}:`` (the braces make them one hash slot):

    spent            all-time spend, ledger units (1e-9 USD); absent until seeded from the request log
    p:<period id>    spend in one budget period ("p:month:2026-11-01"), expiring after the period
    held             sorted set: admission id -> when its lease ends (ms); the replica that admitted it
                     renews the lease while the request runs (``RENEW``), so a dead replica's holds lapse
    amounts          hash: admission id -> units reserved
    since            hash: admission id -> when it was admitted (ms)
    reserved         the sum of ``amounts``
    duration         how long a request of the key usually holds its slot (ms, a moving average), for the
                     wait a ``concurrency_limited`` refusal states
    rpm:<minute>     requests admitted in a minute; tpm:<minute> tokens charged in it
    settled:<id>     marks a settlement done, so a retried one never charges twice
    gone:<id>        an admission released before it was taken (its call timed out): refused if it comes
    seeded           set: ids of the generations the last seed read from the request log (those created
                     since ``seeded_since`` less the longest request), whose settlements are not charged
    seeded_since     unix seconds: settlements of requests that ended before it are in the seed's figure
    pending          hash: generation id -> "cost period at", settlements of an admitted key that arrived
                     before its spend was seeded (Redis restarted empty); the seed adds those the log lacks

``tm:epoch`` (outside every key's prefix) is a random value set once: a Redis that has lost its data lacks
it, which tells replicas to send their recent settlements again (``redis_settlement.py``).

The window arithmetic is ``tokenmux.limits.window``'s, in Lua; keep the two alike.
"""

from __future__ import annotations

# ``window.wait_s`` in Lua: seconds until one more unit fits under ``limit``.
WAIT_FUNCTION = """
local function wait_s(previous, current, elapsed, limit)
  local room = limit - 1
  if previous * (1 - elapsed / 60) + current <= room then return 0 end
  if current <= room then return 60 * (1 - (room - current) / previous) - elapsed end
  return (60 - elapsed) + 60 * (1 - room / current)
end
"""

# ARGV: prefix, admission id, reserve, credit (-1: none), budget (-1), period id ("" none), rpm (-1),
#       tpm (-1), concurrency (-1), lease ms
# Returns {"ok", spent, period spent, reserved} | {"seed"} | {"gone"} | {"concurrency"|"rpm"|"tpm", wait s}
#       | {"credit"|"budget", spent, period spent, reserved}
ADMIT = (
    WAIT_FUNCTION
    + """
local p = ARGV[1]
local id = ARGV[2]
local reserve = tonumber(ARGV[3])
local credit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local pid = ARGV[6]
local rpm = tonumber(ARGV[7])
local tpm = tonumber(ARGV[8])
local concurrency = tonumber(ARGV[9])
local lease_ms = tonumber(ARGV[10])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Released by its replica after this call timed out there: the request went on without it.
if redis.call('EXISTS', p .. 'gone:' .. id) == 1 then return {'gone'} end

local spent = redis.call('GET', p .. 'spent')
if not spent then return {'seed'} end
local pspent = '0'
if pid ~= '' then
  pspent = redis.call('GET', p .. 'p:' .. pid)
  if not pspent then return {'seed'} end
end

-- Holds whose lease was not renewed (their replica died or lost Redis) lapse here.
local lapsed = redis.call('ZRANGEBYSCORE', p .. 'held', '-inf', now_ms)
for _, old in ipairs(lapsed) do
  local amount = redis.call('HGET', p .. 'amounts', old)
  if amount then
    redis.call('DECRBY', p .. 'reserved', amount)
    redis.call('HDEL', p .. 'amounts', old)
  end
  redis.call('HDEL', p .. 'since', old)
  redis.call('ZREM', p .. 'held', old)
end

if concurrency >= 0 and redis.call('ZCARD', p .. 'held') >= concurrency then
  -- The soonest a slot is expected back: the oldest request's usual end, never a busy loop.
  local usual = tonumber(redis.call('GET', p .. 'duration') or '1000')
  local oldest = now_ms
  for _, since in ipairs(redis.call('HVALS', p .. 'since')) do
    oldest = math.min(oldest, tonumber(since))
  end
  local wait_ms = math.max(usual - (now_ms - oldest), usual / 10, 10)
  return {'concurrency', tostring(wait_ms / 1000)}
end

local minute = math.floor(now_ms / 60000)
local elapsed = (now_ms - minute * 60000) / 1000
local function wait(name, limit)
  local previous = tonumber(redis.call('GET', p .. name .. ':' .. (minute - 1)) or '0')
  local current = tonumber(redis.call('GET', p .. name .. ':' .. minute) or '0')
  return wait_s(previous, current, elapsed, limit)
end
if rpm >= 0 then
  local w = wait('rpm', rpm)
  if w > 0 then return {'rpm', tostring(w)} end
end
if tpm >= 0 then
  local w = wait('tpm', tpm)
  if w > 0 then return {'tpm', tostring(w)} end
end

local reserved = tonumber(redis.call('GET', p .. 'reserved') or '0')
if credit >= 0 and tonumber(spent) + reserved + reserve > credit then
  return {'credit', spent, pspent, tostring(reserved)}
end
if budget >= 0 and tonumber(pspent) + reserved + reserve > budget then
  return {'budget', spent, pspent, tostring(reserved)}
end

local requests = p .. 'rpm:' .. minute
redis.call('INCR', requests)
redis.call('EXPIRE', requests, 150)
redis.call('ZADD', p .. 'held', now_ms + lease_ms, id)
redis.call('HSET', p .. 'amounts', id, reserve)
redis.call('HSET', p .. 'since', id, now_ms)
redis.call('INCRBY', p .. 'reserved', reserve)
return {'ok', spent, pspent, tostring(reserved + reserve)}
"""
)

# ARGV: prefix, admission id, amount, credit (-1: none), budget (-1), period id ("" none)
# Returns {"ok", spent, period spent, reserved} | {"gone"} (the admission is no longer held: settled, or
#       lapsed) | {"seed"}
#       | {"credit"|"budget", spent, period spent, reserved}
RESERVE = """
local p = ARGV[1]
local id = ARGV[2]
local amount = tonumber(ARGV[3])
local credit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local pid = ARGV[6]
if redis.call('HEXISTS', p .. 'amounts', id) == 0 then return {'gone'} end
local spent = redis.call('GET', p .. 'spent')
if not spent then return {'seed'} end
local pspent = '0'
if pid ~= '' then
  pspent = redis.call('GET', p .. 'p:' .. pid)
  if not pspent then return {'seed'} end
end
local reserved = tonumber(redis.call('GET', p .. 'reserved') or '0')
if credit >= 0 and tonumber(spent) + reserved + amount > credit then
  return {'credit', spent, pspent, tostring(reserved)}
end
if budget >= 0 and tonumber(pspent) + reserved + amount > budget then
  return {'budget', spent, pspent, tostring(reserved)}
end
redis.call('HINCRBY', p .. 'amounts', id, amount)
redis.call('INCRBY', p .. 'reserved', amount)
return {'ok', spent, pspent, tostring(reserved + amount)}
"""

# ARGV: prefix, settlement id (the generation id), admission id ("" none), cost, tokens, period id ("" none),
#       when the request ended (unix s), 1 if the key was admitted (it has limits) else 0
# Returns 1 when settled now, 0 when this settlement was settled before.
SETTLE = """
local p = ARGV[1]
if not redis.call('SET', p .. 'settled:' .. ARGV[2], '1', 'NX', 'EX', 3600) then return 0 end
local id = ARGV[3]
local t = redis.call('TIME')
if id ~= '' then
  local amount = redis.call('HGET', p .. 'amounts', id)
  if amount then
    redis.call('DECRBY', p .. 'reserved', amount)
    redis.call('HDEL', p .. 'amounts', id)
  else
    -- Not taken (yet): its admission timed out at the replica, which went on without it. If the
    -- admission still arrives, it is refused.
    redis.call('SET', p .. 'gone:' .. id, '1', 'EX', 600)
  end
  local since = redis.call('HGET', p .. 'since', id)
  if since then
    local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local usual = tonumber(redis.call('GET', p .. 'duration') or '-1')
    local took = now_ms - tonumber(since)
    if usual >= 0 then took = usual * 0.8 + took * 0.2 end
    redis.call('SET', p .. 'duration', tostring(math.floor(took)), 'EX', 3600)
    redis.call('HDEL', p .. 'since', id)
  end
  redis.call('ZREM', p .. 'held', id)
end
local cost = tonumber(ARGV[4])
local pid = ARGV[6]
if cost > 0 then
  if redis.call('EXISTS', p .. 'spent') == 1 then
    -- A generation the seed read from the request log is in its figure already.
    local counted = redis.call('SISMEMBER', p .. 'seeded', ARGV[2]) == 1
        or tonumber(ARGV[7]) < tonumber(redis.call('GET', p .. 'seeded_since') or '0')
    if not counted then
      redis.call('INCRBY', p .. 'spent', ARGV[4])
      if pid ~= '' and redis.call('EXISTS', p .. 'p:' .. pid) == 1 then
        redis.call('INCRBY', p .. 'p:' .. pid, ARGV[4])
      end
    end
  elseif ARGV[8] == '1' then
    -- Not seeded (Redis restarted empty): the seed adds it unless the request log has it by then.
    redis.call('HSET', p .. 'pending', ARGV[2], ARGV[4] .. ' ' .. pid .. ' ' .. ARGV[7])
    redis.call('EXPIRE', p .. 'pending', 86400)
  end
  -- A key never admitted is seeded only when asked about, from the request log, which has this charge.
end
local tokens = tonumber(ARGV[5])
if tokens > 0 then
  local key = p .. 'tpm:' .. math.floor(tonumber(t[1]) / 60)
  redis.call('INCRBY', key, tokens)
  redis.call('EXPIRE', key, 150)
end
return 1
"""

# ARGV: prefix, lease ms, then (admission id, units reserved) for each hold of the calling replica.
# Extends each hold's lease; a hold Redis has lost (it restarted empty, or the lease ran out while Redis
# was unreachable) is taken again, unless it was released meanwhile. Returns how many were taken again.
RENEW = """
local p = ARGV[1]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now_ms + tonumber(ARGV[2])
local restored = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('ZADD', p .. 'held', 'XX', 'CH', until_ms, id) == 0
      and not redis.call('ZSCORE', p .. 'held', id)
      and redis.call('EXISTS', p .. 'gone:' .. id) == 0 then
    redis.call('ZADD', p .. 'held', until_ms, id)
    redis.call('HSET', p .. 'amounts', id, ARGV[i + 1])
    redis.call('HSET', p .. 'since', id, now_ms)
    redis.call('INCRBY', p .. 'reserved', ARGV[i + 1])
    restored = restored + 1
  end
end
return restored
"""

# ARGV: prefix, all-time spend, period id ("" none), period spend, period seconds left, seeded since (unix
#       s), then the ids of the generations in the figures created since then less the longest request.
# A key seeded already keeps its figures (another replica seeded first); its period may be new.
SEED = """
local p = ARGV[1]
local pid = ARGV[3]
if redis.call('EXISTS', p .. 'spent') == 0 then
  local total = tonumber(ARGV[2])
  local pspent = tonumber(ARGV[4])
  local since = tonumber(ARGV[6])
  redis.call('DEL', p .. 'seeded')
  for i = 7, #ARGV, 1000 do
    redis.call('SADD', p .. 'seeded', unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('EXPIRE', p .. 'seeded', 86400)
  redis.call('SET', p .. 'seeded_since', ARGV[6])
  local pending = redis.call('HGETALL', p .. 'pending')
  for i = 1, #pending, 2 do
    local cost, ppid, at = string.match(pending[i + 1], '^(%S+) (%S*) (%S+)$')
    if redis.call('SISMEMBER', p .. 'seeded', pending[i]) == 0 and tonumber(at) >= since then
      total = total + tonumber(cost)
      if ppid == pid then pspent = pspent + tonumber(cost) end
    end
  end
  redis.call('DEL', p .. 'pending')
  redis.call('SET', p .. 'spent', string.format('%d', total))
  if pid ~= '' then
    redis.call('SET', p .. 'p:' .. pid, string.format('%d', pspent), 'NX', 'EX', tonumber(ARGV[5]) + 86400)
  end
elseif pid ~= '' then
  redis.call('SET', p .. 'p:' .. pid, ARGV[4], 'NX', 'EX', tonumber(ARGV[5]) + 86400)
end
return 1
"""

# ARGV: the epoch key, a new random value. Returns the epoch, setting it first if Redis has none.
EPOCH = """
local epoch = redis.call('GET', ARGV[1])
if epoch then return epoch end
redis.call('SET', ARGV[1], ARGV[2])
return ARGV[2]
"""

# ARGV: prefix, period id ("" none). Returns {spent or false, period spent or false, reserved, in flight,
# requests previous minute, this minute, tokens previous, this, seconds into the minute}
STANDING = """
local p = ARGV[1]
local t = redis.call('TIME')
local minute = math.floor(tonumber(t[1]) / 60)
local pspent = false
if ARGV[2] ~= '' then pspent = redis.call('GET', p .. 'p:' .. ARGV[2]) end
return {
  redis.call('GET', p .. 'spent'), pspent,
  redis.call('GET', p .. 'reserved') or '0', redis.call('ZCARD', p .. 'held'),
  redis.call('GET', p .. 'rpm:' .. (minute - 1)) or '0', redis.call('GET', p .. 'rpm:' .. minute) or '0',
  redis.call('GET', p .. 'tpm:' .. (minute - 1)) or '0', redis.call('GET', p .. 'tpm:' .. minute) or '0',
  tostring(tonumber(t[1]) - minute * 60)
}
"""
