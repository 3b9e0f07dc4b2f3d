/**
 * Lua scripts, defined once per client (ioredis `defineCommand`) and run by SHA.
 *
 * APPLY: KEYS[1] is the group's marker, KEYS[2..] the group's keys (all in one hash slot).
 * ARGV: seq, marker TTL (ms), then for each key: expire-at (epoch ms) and its op/field/value triples
 * packed in one string, every token followed by the unit separator (byte 31), which no field name or
 * value contains. One argument per key instead of three per op keeps the client's work per flush
 * small (a flush carries thousands of histogram bins). A group whose marker already holds seq or later is skipped (returns 0): that is what makes
 * a retry, or ioredis re-sending an unanswered command after a reconnect, harmless.
 */
export const APPLY_LUA = `
local seq = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= seq then return 0 end
local a = 3
for k = 2, #KEYS do
  local key = KEYS[k]
  local exp = ARGV[a]
  local t, n = {}, 0
  for tok in string.gmatch(ARGV[a + 1], '([^\\31]*)\\31') do
    n = n + 1
    t[n] = tok
  end
  a = a + 2
  for i = 1, n, 3 do
    local op, f, v = t[i], t[i + 1], t[i + 2]
    if op == 'i' then
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
 * or larger, anything else by adding. Returns one flat field/value list per slot. Merging in Redis
 * sends each field once instead of once per bucket.
 */
export const MERGE_LUA = `
local nslots = tonumber(ARGV[#KEYS + 1])
local acc = {}
for s = 1, nslots do acc[s] = {} end
for k = 1, #KEYS do
  local slot = tonumber(ARGV[k])
  local kv = redis.call('HGETALL', KEYS[k])
  if slot < 0 then
    -- a key of counters only (histogram bins): add, no rule to look up
    local t = acc[-slot]
    for i = 1, #kv, 2 do
      local f = kv[i]
      t[f] = (t[f] or 0) + tonumber(kv[i + 1])
    end
  else
    local t = acc[slot]
    for i = 1, #kv, 2 do
      local f, v = kv[i], kv[i + 1]
      local cur = t[f]
      if string.sub(f, 1, 5) == 'last:' then
        if cur == nil or string.sub(v, 1, 15) >= string.sub(cur, 1, 15) then t[f] = v end
      else
        local n = tonumber(v)
        if cur == nil then
          t[f] = n
        else
          local suffix = string.sub(f, -4)
          if suffix == ':min' then
            if n < cur then t[f] = n end
          elseif suffix == ':max' then
            if n > cur then t[f] = n end
          else
            t[f] = cur + n
          end
        end
      end
    end
  end
end
local out = {}
for s = 1, nslots do
  local flat = {}
  for f, v in pairs(acc[s]) do
    flat[#flat + 1] = f
    if type(v) == 'number' then flat[#flat + 1] = string.format('%.0f', v) else flat[#flat + 1] = v end
  end
  out[s] = flat
end
return out
`
