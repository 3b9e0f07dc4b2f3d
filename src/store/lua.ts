import { PAIR_DISTS, PAIR_ZERO, ZERO_BIN } from '../metrics/histogram.js'
import { STAT_NAMES } from './layout.js'
import { MAX_SUM, PARTS_PER_GROUP } from './types.js'

/**
 * Lua scripts, defined once per client (ioredis `defineCommand`) and run by SHA.
 *
 * APPLY: KEYS[1] is the group's marker, KEYS[2] the seal index of the group's tag, KEYS[3..] the
 * group's keys (all in one hash slot). ARGV: seq, marker TTL (ms), then for each key: expire-at (epoch
 * ms), its op/field/value triples packed in one string, and its place (`<period>|<sub>`, or '' for a
 * key never sealed; src/store/layout.ts); every token followed by the unit separator (byte 31), which no field name or
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
-- A part after the first lands only right after the one before it (src/store/redis-store.ts).
local part = seq % ${PARTS_PER_GROUP}
if part > 0 and (not last or tonumber(last) ~= seq - 1) then
  return redis.error_reply('METRICS_ORDER part ' .. part .. ' waits for the part before it')
end
local FIRST = 3
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
for k = FIRST, #KEYS do
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
  a = a + 3
end
-- A write into a sub-bucket already sealed marks its period late (src/store/layout.ts sealsKey).
local sealed = {}
a = 3
for k = FIRST, #KEYS do
  local period, s = string.match(ARGV[a + 2], '^(.+)|(.)$')
  if period then
    local subs = sealed[period]
    if subs == nil then
      subs = redis.call('HGET', KEYS[2], period) or ''
      sealed[period] = subs
    end
    if subs ~= '' and string.find(subs, s, 1, true) then
      redis.call('HSET', KEYS[2], period .. ':late', 1)
      sealed[period] = ''
    end
  end
  a = a + 3
end
a = 3
for k = FIRST, #KEYS do
  local key = KEYS[k]
  local exp = ARGV[a]
  local t = ops[k]
  a = a + 3
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
 * FETCH: the raw contents of KEYS (one hash slot), in one atomic call; ARGV[i] says what KEYS[i] is:
 * `s` a sealed block (the string as it is, '' when absent; `s<length>` when the service holds it at that
 * length: then '=' when it still has that length); `x` a seal index (read; returned, its fields and
 * values joined by NUL, only as `xr` or when a claim below fails); `h` a live hash (its fields and
 * values joined by NUL, which no name or value holds), followed by `<index>|<period>|<sub>` when it may
 * be sealed: then it is not read when its seal index (KEYS[index]) says its sub-bucket is sealed and its
 * period has had no late write.
 *
 * ARGV past #KEYS are the service's claims `a<index>|<period>|<subs>`: the seal index KEYS[index] says
 * `subs` of `period` are sealed and the period has had no late write. The service leaves out the live
 * hashes of such sub-buckets (it holds the seal index from an earlier call, src/store/fetch.ts
 * SealIndexes). When a claim no longer holds, nothing else is read: the answer is the seal indexes
 * followed by '!', and the service asks again with what they say.
 *
 * Nothing is merged here: the service merges (src/store/fetch.ts), so a read costs Redis only the
 * copying of what it reads. Being one call, it sees a bucket either before its seal (in the hash) or
 * after (in the block), never in both or neither.
 */
export const FETCH_LUA = `#!lua flags=no-writes
local out, indexes, raws = {}, {}, {}
local n = #KEYS
for k = 1, n do
  if string.byte(ARGV[k]) == 120 then
    local kv, t = redis.call('HGETALL', KEYS[k]), {}
    for j = 1, #kv, 2 do t[kv[j]] = kv[j + 1] end
    indexes[k] = t
    raws[k] = kv
  end
end
local function sealed(t, period, s)
  local subs = t[period]
  return subs ~= nil and t[period .. ':late'] == nil and string.find(subs, s, 1, true) ~= nil
end
for i = n + 1, #ARGV do
  local x, period, subs = string.match(ARGV[i], '^a(%d+)|(.+)|(.+)$')
  local t = x and indexes[tonumber(x)]
  local holds = t ~= nil
  if holds then
    for j = 1, #subs do
      if not sealed(t, period, string.sub(subs, j, j)) then holds = false break end
    end
  end
  if not holds then
    for k = 1, n do out[k] = raws[k] and table.concat(raws[k], '\\0') or '' end
    out[n + 1] = '!'
    return out
  end
end
local function skip(a)
  local i, period, s = string.match(a, '^h(%d+)|(.+)|(.)$')
  if not i then return false end
  return sealed(indexes[tonumber(i)], period, s)
end
for k = 1, n do
  local a = ARGV[k]
  local b = string.byte(a)
  if b == 115 then
    -- 's<length>': the service holds this block at that length; blocks only grow, so the same
    -- length is the same block, answered '=' (no block is one byte).
    local held = tonumber(string.sub(a, 2))
    if held and redis.call('STRLEN', KEYS[k]) == held then
      out[k] = '='
    else
      out[k] = redis.call('GET', KEYS[k]) or ''
    end
  elseif b == 120 then
    out[k] = a == 'xr' and table.concat(raws[k], '\\0') or ''
  elseif skip(a) then
    out[k] = ''
  else
    out[k] = table.concat(redis.call('HGETALL', KEYS[k]), '\\0')
  end
end
return out
`

/**
 * SEAL: moves live hashes into a block (src/store/layout.ts). KEYS[1] is the block, KEYS[2] the tag's
 * seal index, KEYS[3..] live hashes of the same hash slot; ARGV: the block's period, the oldest hour
 * and 10-minute period kept (older ones leave the seal index; '' for no pruning), then, for each
 * live hash, its sub-bucket and its part. The unit's sub-buckets are recorded as sealed in the seal index. The
 * hashes that exist are packed into one MessagePack snapshot (canonical integers of up to 15 digits
 * as integers, latest values always as strings), added at the end of the block, and deleted; the block
 * expires with the latest of them. Pairs equal to their model are written as 1, and histograms as
 * sorted differences (the decoding is src/store/layout.ts's partOf). One call, so a read or a flush sees each figure exactly once:
 * in the hash before, in the block after; a flush that comes later writes a new live hash beside
 * the block. Returns the bytes appended (0 when nothing was live).
 */
export const SEAL_LUA = `#!lua
local sub, find, tonumber = string.sub, string.find, tonumber
local function int(s)
  return #s <= 15 and (s == '0' or find(s, '^%-?[1-9]%d*$') ~= nil)
end
-- Every key is checked before anything is written: a key of another type refuses the whole call.
for k = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[k]).ok
  if kind ~= 'none' and kind ~= (k == 1 and 'string' or 'hash') then
    return redis.error_reply('METRICS_REFUSED ' .. KEYS[k] .. ' holds a ' .. kind .. ', not a ' .. (k == 1 and 'string' or 'hash'))
  end
end
local snap, any, exp = {}, false, redis.call('PEXPIRETIME', KEYS[1])
local period, hours, spans = ARGV[1], ARGV[2], ARGV[3]
for k = 3, #KEYS do
  local kv = redis.call('HGETALL', KEYS[k])
  if #kv > 0 then
    for i = 1, #kv, 2 do
      local f, v = kv[i], kv[i + 1]
      if sub(f, 1, 5) ~= 'last:' then
        if int(v) then kv[i + 1] = tonumber(v) end
        if int(f) then kv[i] = tonumber(f) end
      end
    end
    local s, p = ARGV[2 * k - 2], ARGV[2 * k - 1]
    snap[s] = snap[s] or {}
    snap[s][p] = kv
    any = true
    local e = redis.call('PEXPIRETIME', KEYS[k])
    if e > exp then exp = e end
    redis.call('UNLINK', KEYS[k])
  end
end
-- Nothing live and no block: nothing is sealed, and the index stays as it is.
if exp <= 0 then return 0 end
-- The unit's sub-buckets are sealed from now on, whether or not each held anything; the index
-- expires with the latest block it describes.
local subs = redis.call('HGET', KEYS[2], period) or ''
for k = 3, #KEYS do
  local s = ARGV[2 * k - 2]
  if not string.find(subs, s, 1, true) then subs = subs .. s end
end
redis.call('HSET', KEYS[2], period, subs)
-- Periods past their retention leave the index: hours (13 characters) before ARGV[2], 10-minute
-- periods before ARGV[3] ('': no pruning in this call).
if hours ~= '' then
  local names = redis.call('HKEYS', KEYS[2])
  for i = 1, #names do
    local n = names[i]
    if (sub(n, 14, 14) == '-' and n < spans) or (sub(n, 14, 14) ~= '-' and n < hours) then redis.call('HDEL', KEYS[2], n) end
  end
end
if exp > redis.call('PEXPIRETIME', KEYS[2]) then redis.call('PEXPIREAT', KEYS[2], exp) end
if not any then return 0 end
-- A pair whose figures are exactly its model's in the same bucket (as when every request of the
-- model went through one gateway) is written as 1, each part on its own: its stats when they equal
-- the model's less its latest provider, its histograms when they equal the model's three at the pair
-- offsets (src/store/layout.ts partOf rebuilds both). Equal counts alone would not do: a flush may
-- have applied the model's part and not yet the pair's.
local function asMap(kv, skipLast)
  local m, n = {}, 0
  for i = 1, #kv, 2 do
    if not (skipLast and type(kv[i]) == 'string' and sub(kv[i], 1, 5) == 'last:') then
      m[kv[i]] = kv[i + 1]
      n = n + 1
    end
  end
  return m, n
end
local function equal(kv, m, n)
  if #kv ~= 2 * n then return false end
  for i = 1, #kv, 2 do
    if m[kv[i]] ~= kv[i + 1] then return false end
  end
  return true
end
local OFFSETS = { t = ${PAIR_DISTS.ttft}, T = ${PAIR_DISTS.total}, p = ${PAIR_DISTS.tps} }
for _, parts in pairs(snap) do
  local ms, ns, md, nd
  if parts['s'] then ms, ns = asMap(parts['s'], true) end
  md, nd = {}, 0
  for code, offset in pairs(OFFSETS) do
    local kv = parts[code]
    if kv then
      for i = 1, #kv, 2 do
        local f = kv[i]
        local bin = offset + (f == '${ZERO_BIN}' and ${PAIR_ZERO} or (tonumber(f) or -1e9))
        if md[bin] == nil then nd = nd + 1 end
        md[bin] = kv[i + 1]
      end
    end
  end
  for p, kv in pairs(parts) do
    local kind = sub(p, 1, 2)
    if (kind == 'g:' or kind == 'p:') and type(kv) == 'table' then
      local last = sub(p, -2)
      if last == ':s' and ms and equal(kv, ms, ns) then parts[p] = 1
      elseif last == ':d' and nd > 0 and equal(kv, md, nd) then parts[p] = 1 end
    end
  end
end
-- Stats field names by number (src/store/layout.ts STAT_NAMES).
local STAT = {}
for i, name in ipairs(cjson.decode('${JSON.stringify(STAT_NAMES)}')) do STAT[name] = i end
for _, parts in pairs(snap) do
  for p, kv in pairs(parts) do
    if type(kv) == 'table' and (p == 's' or sub(p, -2) == ':s') then
      for i = 1, #kv, 2 do kv[i] = STAT[kv[i]] or kv[i] end
    end
  end
end
-- A hash of integers only (histogram bins) is written sorted by field, each field as its difference
-- from the one before, after a leading true: small differences take one byte.
local function delta(kv)
  local idx = {}
  for i = 1, #kv, 2 do
    if type(kv[i]) ~= 'number' or type(kv[i + 1]) ~= 'number' then return kv end
    idx[#idx + 1] = i
  end
  table.sort(idx, function(a, b) return kv[a] < kv[b] end)
  local out, prev = { true }, 0
  for _, i in ipairs(idx) do
    out[#out + 1] = kv[i] - prev
    out[#out + 1] = kv[i + 1]
    prev = kv[i]
  end
  return out
end
for _, parts in pairs(snap) do
  for p, kv in pairs(parts) do
    if type(kv) == 'table' and #kv >= 4 then parts[p] = delta(kv) end
  end
end
local packed = cmsgpack.pack(snap)
-- SET rather than APPEND: APPEND leaves up to as much free room again in the string.
redis.call('SET', KEYS[1], (redis.call('GET', KEYS[1]) or '') .. packed)
if exp > 0 then redis.call('PEXPIREAT', KEYS[1], exp) end
return #packed
`
