"""The Lua scripts that keep the shared ledger: each runs atomically in Redis, so checks and takes by many
replicas never interleave.

Keys of one API key share the prefix ``tm:{<key id>}:`` (the braces make them one hash slot):

    spent            all-time spend, ledger units (1e-9 USD); absent until seeded from the request log
    p:<period id>    spend in one budget period ("p:month:2026-11-01"), expiring after the period
    held             sorted set: admission id -> when its reservation lapses (ms), for a replica that died
    amounts          hash: admission id -> units reserved
    reserved         the sum of ``amounts``
    rpm:<minute>     requests admitted in a minute; tpm:<minute> tokens charged in it
    settled:<id>     marks a settlement done, so a retried one never charges twice

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
#       tpm (-1), concurrency (-1), hold ms
# Returns {"ok", spent, period spent, reserved} | {"seed"} | {"concurrency"|"rpm"|"tpm", wait s}
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
local hold_ms = tonumber(ARGV[10])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local spent = redis.call('GET', p .. 'spent')
if not spent then return {'seed'} end
local pspent = '0'
if pid ~= '' then
  pspent = redis.call('GET', p .. 'p:' .. pid)
  if not pspent then return {'seed'} end
end

-- Reservations of a replica that stopped without settling lapse here.
local lapsed = redis.call('ZRANGEBYSCORE', p .. 'held', '-inf', now_ms)
for _, old in ipairs(lapsed) do
  local amount = redis.call('HGET', p .. 'amounts', old)
  if amount then
    redis.call('DECRBY', p .. 'reserved', amount)
    redis.call('HDEL', p .. 'amounts', old)
  end
  redis.call('ZREM', p .. 'held', old)
end

if concurrency >= 0 and redis.call('ZCARD', p .. 'held') >= concurrency then
  return {'concurrency', '1'}
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
redis.call('ZADD', p .. 'held', now_ms + hold_ms, id)
redis.call('HSET', p .. 'amounts', id, reserve)
redis.call('INCRBY', p .. 'reserved', reserve)
return {'ok', spent, pspent, tostring(reserved + reserve)}
"""
)

# ARGV: prefix, settlement id (the generation id), admission id ("" none), cost, tokens, period id ("" none)
# Returns 1 when charged, 0 when this settlement was charged before.
SETTLE = """
local p = ARGV[1]
if not redis.call('SET', p .. 'settled:' .. ARGV[2], '1', 'NX', 'EX', 3600) then return 0 end
local id = ARGV[3]
if id ~= '' then
  local amount = redis.call('HGET', p .. 'amounts', id)
  if amount then
    redis.call('DECRBY', p .. 'reserved', amount)
    redis.call('HDEL', p .. 'amounts', id)
  end
  redis.call('ZREM', p .. 'held', id)
end
local cost = tonumber(ARGV[4])
-- A figure not seeded yet is left absent: seeding reads the request log, which has this charge.
if cost > 0 and redis.call('EXISTS', p .. 'spent') == 1 then redis.call('INCRBY', p .. 'spent', ARGV[4]) end
local pid = ARGV[6]
if cost > 0 and pid ~= '' and redis.call('EXISTS', p .. 'p:' .. pid) == 1 then
  redis.call('INCRBY', p .. 'p:' .. pid, ARGV[4])
end
local tokens = tonumber(ARGV[5])
if tokens > 0 then
  local t = redis.call('TIME')
  local key = p .. 'tpm:' .. math.floor(tonumber(t[1]) / 60)
  redis.call('INCRBY', key, tokens)
  redis.call('EXPIRE', key, 150)
end
return 1
"""

# ARGV: prefix, all-time spend, period id ("" none), period spend, period seconds left
SEED = """
local p = ARGV[1]
redis.call('SET', p .. 'spent', ARGV[2], 'NX')
if ARGV[3] ~= '' then
  redis.call('SET', p .. 'p:' .. ARGV[3], ARGV[4], 'NX', 'EX', tonumber(ARGV[5]) + 86400)
end
return 1
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
