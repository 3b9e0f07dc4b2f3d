import { MAX_SUM } from './types.js'

/**
 * Lua scripts, defined once per client (ioredis `defineCommand`) and run by SHA.
 *
 * APPLY: KEYS[1] is the group's marker, KEYS[2..] the group's keys (all in one hash slot).
 * ARGV: seq, marker TTL (ms), then for each key: expire-at (epoch ms) and its op/field/value triples
 * packed in one string, every token followed by the unit separator (byte 31), which no field name or
 * value contains. One argument per key instead of three per op keeps the client's work per flush
 * small (a flush carries thousands of histogram bins). A group whose marker already holds seq or later is skipped (returns 0): that is what makes
 * a retry, or ioredis re-sending an unanswered command after a reconnect, harmless.
 *
 * A group is applied whole or not at all. Redis scripts have no rollback, so everything that could
 * fail is checked before the first write: every key is a hash (or absent), and no checked sum (`s`)
 * would pass MAX_SUM; a group that fails a check is refused with an error starting METRICS_REFUSED and
 * nothing written. The shebang (no flags: a script that may write) makes Redis refuse the whole script
 * up front when it is out of memory, instead of at its first write.
 */
export const APPLY_LUA = `#!lua
local seq = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= seq then return 0 end
-- Checked sums are compared exactly, in two halves of at most 10 digits each (doubles are exact
-- only to 2^53): the sum of two digit strings must not pass MAX_SUM.
local function halves(s)
  local n = #s
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end
local MAX_HI, MAX_LO = halves('${MAX_SUM}')
local function fits(cur, v)
  if #cur > 19 or #v > 19 or not string.find(cur, '^%d+$') or not string.find(v, '^%d+$') then return false end
  local ch, cl = halves(cur)
  local vh, vl = halves(v)
  local hi, lo = ch + vh, cl + vl
  if lo >= 1000000000 then hi, lo = hi + 1, lo - 1000000000 end
  return hi < MAX_HI or (hi == MAX_HI and lo <= MAX_LO)
end
local ops = {}
local a = 3
for k = 2, #KEYS do
  local key = KEYS[k]
  local t, n = {}, 0
  for tok in string.gmatch(ARGV[a + 1], '([^\\31]*)\\31') do
    n = n + 1
    t[n] = tok
  end
  ops[k] = t
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'hash' and kind ~= 'none' then
    return redis.error_reply('METRICS_REFUSED ' .. key .. ' holds a ' .. kind .. ', not a hash')
  end
  for i = 1, n, 3 do
    if t[i] == 's' then
      if not fits(redis.call('HGET', key, t[i + 1]) or '0', t[i + 2]) then
        return redis.error_reply('METRICS_REFUSED ' .. key .. ' ' .. t[i + 1] .. ' would pass the largest storable sum')
      end
    end
  end
  a = a + 2
end
a = 3
for k = 2, #KEYS do
  local key = KEYS[k]
  local exp = ARGV[a]
  local t = ops[k]
  a = a + 2
  for i = 1, #t, 3 do
    local op, f, v = t[i], t[i + 1], t[i + 2]
    if op == 'i' or op == 's' then
      redis.call('HINCRBY', key, f, v)
    else
      local cur = redis.call('HGET', key, f)
      if not cur then
        redis.call('HSET', key, f, v)
      elseif op == 'm' then
        if tonumber(v) < tonumber(cur) then redis.call('HSET', key, f, v) end
      elseif op == 'M' then
        if tonumber(v) > tonumber(cur) then redis.call('HSET', key, f, v) end
      elseif op == 'l' then
        if string.sub(v, 1, 15) >= string.sub(cur, 1, 15) then redis.call('HSET', key, f, v) end
      end
    end
  end
  redis.call('PEXPIREAT', key, exp)
end
redis.call('SET', KEYS[1], seq, 'PX', ARGV[2])
return 1
`

/**
 * MERGE: reads KEYS (hashes, one hash slot) and merges key i into result slot |ARGV[i]|; ARGV[#KEYS+1]
 * is the number of slots. A negative slot marks a key of plain counters (histogram bins), added
 * without looking at field names. Fields merge by name: `last:` latest by time prefix, `:min`/`:max` smaller
 * or larger, anything else by adding. Returns one string per slot: its fields and values joined by NUL
 * (names and latest values never hold control characters; numbers are integers), which costs Redis and
 * the client one reply element per slot instead of two per field. Merging in Redis sends each field
 * once instead of once per bucket.
 *
 * The cost is per field read, so the loops do as little as they can: a field's rule is worked out once
 * per name, values are added by Lua's string-to-number coercion (no call), and a key listed more than
 * once (one bucket feeding several slots) is fetched once, and a slot fed by one key (a state's minute,
 * a trend's point) is that key's reply as it is: a table built field by field costs more than the reading.
 */
export const MERGE_LUA = `
local tonumber, sub = tonumber, string.sub
local nkeys = #KEYS
local nslots = tonumber(ARGV[nkeys + 1])
local acc = {}
for s = 1, nslots do acc[s] = {} end
-- keys listed more than once: their fields are fetched once and kept
local seen, kept = {}, nil
for k = 1, nkeys do
  local key = KEYS[k]
  if seen[key] then kept = kept or {}; kept[key] = false else seen[key] = true end
end
-- a slot fed by one key is that key's fields as they are: no table to build
local feeds, raw = {}, {}
for k = 1, nkeys do
  local s = tonumber(ARGV[k])
  if s < 0 then s = -s end
  feeds[s] = (feeds[s] or 0) + 1
end
-- rule per field name: 0 add, 1 smaller, 2 larger, 3 latest
local rules = {}
for k = 1, nkeys do
  local key = KEYS[k]
  local kv
  if kept and kept[key] ~= nil then
    kv = kept[key]
    if not kv then
      kv = redis.call('HGETALL', key)
      kept[key] = kv
    end
  else
    kv = redis.call('HGETALL', key)
  end
  local slot = tonumber(ARGV[k])
  if feeds[slot < 0 and -slot or slot] == 1 then
    raw[slot < 0 and -slot or slot] = kv
  elseif slot < 0 then
    local t = acc[-slot]
    for i = 1, #kv, 2 do
      local f = kv[i]
      local cur = t[f]
      if cur then t[f] = cur + kv[i + 1] else t[f] = tonumber(kv[i + 1]) end
    end
  else
    local t = acc[slot]
    for i = 1, #kv, 2 do
      local f, v = kv[i], kv[i + 1]
      local r = rules[f]
      if not r then
        if sub(f, 1, 5) == 'last:' then r = 3
        else
          local suffix = sub(f, -4)
          if suffix == ':min' then r = 1 elseif suffix == ':max' then r = 2 else r = 0 end
        end
        rules[f] = r
      end
      local cur = t[f]
      if r == 3 then
        if not cur or sub(v, 1, 15) >= sub(cur, 1, 15) then t[f] = v end
      elseif not cur then
        t[f] = tonumber(v)
      elseif r == 0 then
        t[f] = cur + v
      elseif r == 1 then
        local n = tonumber(v)
        if n < cur then t[f] = n end
      else
        local n = tonumber(v)
        if n > cur then t[f] = n end
      end
    end
  end
end
local out, format, typeof = {}, string.format, type
for s = 1, nslots do
  local flat, n = raw[s] or {}, 0
  if raw[s] then acc[s] = {} end
  for f, v in pairs(acc[s]) do
    -- concat writes numbers with 14 significant digits: larger ones are written whole
    if typeof(v) == 'number' and (v >= 1e14 or v <= -1e14) then v = format('%.0f', v) end
    flat[n + 1] = f
    flat[n + 2] = v
    n = n + 2
  end
  out[s] = table.concat(flat, '\0')
end
return out
`
